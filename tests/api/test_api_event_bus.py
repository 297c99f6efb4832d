"""The API with ``MARQUEE_EVENT_BUS``: every accepted event is on the stream before its 2xx; NATS down is a 503.

Against the real NATS server (skipped without it, failed under
MARQUEE_REQUIRE_SERVICES=1), each test on a stream of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from core.bus import EventKind, Topology
from tests.bus.stream import stream_messages

from .support import free_port, make_profile, signup_and_login, watch


def bus_client(make_client: Callable[..., TestClient], url: str, topology: Topology) -> TestClient:
    client = make_client(event_bus=url, event_bus_prefix=topology.prefix)
    bus = client.app.state.marquee.bus  # type: ignore[attr-defined]
    assert bus is not None and bus.wait_connected(10.0)
    return client


def test_watch_event_is_acked_by_the_stream_before_the_2xx(
    make_client: Callable[..., TestClient], nats_url: str, bus_topology: Topology
) -> None:
    client = bus_client(make_client, nats_url, bus_topology)
    headers = signup_and_login(client, "bus@example.com")
    profile = make_profile(client, headers, "Ann")["profile_id"]

    response = watch(client, headers, profile, "m_space", 0.3, event_id="evt-bus-1")
    assert response.status_code == 201, response.text
    # Read right after the answer, by a client of its own: the stream stored it before the 2xx.
    stored = stream_messages(nats_url, bus_topology, bus_topology.subject(EventKind.WATCH))
    assert [h["Nats-Msg-Id"] for h, _ in stored] == ["evt-bus-1"]
    record = json.loads(stored[0][1])
    assert (record["profile_id"], record["title_id"], record["position_s"]) == (profile, "m_space", 300)

    retry = watch(client, headers, profile, "m_space", 0.3, event_id="evt-bus-1")
    assert retry.status_code == 200  # a retry: stored once in the database, published once
    assert len(stream_messages(nats_url, bus_topology, bus_topology.subject(EventKind.WATCH))) == 1
    # The database stays the API's read model: the history shows the event at once.
    history = client.get(f"/v1/profiles/{profile}/history", headers=headers).json()["items"]
    assert [item["title_id"] for item in history] == ["m_space"]


def test_playback_report_and_home_exposures_go_to_the_stream(
    make_client: Callable[..., TestClient], nats_url: str, bus_topology: Topology
) -> None:
    client = bus_client(make_client, nats_url, bus_topology)
    headers = signup_and_login(client, "qoe@example.com")
    profile = make_profile(client, headers, "Bo")["profile_id"]
    report = {
        "session_id": "sess-bus-0001",
        "report_seq": 0,
        "title_id": "m_space",
        "format": "hls",
        "played_s": 12.5,
        "rebuffer_count": 0,
        "rebuffer_s": 0.0,
        "bitrate_switches": 1,
        "avg_bitrate_kbps": 2400,
    }
    assert client.post(f"/v1/profiles/{profile}/playback-sessions", json=report, headers=headers).status_code == 201
    reports = stream_messages(nats_url, bus_topology, bus_topology.subject(EventKind.PLAYBACK))
    assert [h["Nats-Msg-Id"] for h, _ in reports] == ["sess-bus-0001/0"]
    assert json.loads(reports[0][1])["seq"] >= 1  # the database's sequence rides along (the lake keeps it)

    page = client.get(f"/v1/profiles/{profile}/home", headers=headers)
    assert page.status_code == 200
    pages = stream_messages(nats_url, bus_topology, bus_topology.subject(EventKind.EXPOSURE))
    assert [h["Nats-Msg-Id"] for h, _ in pages] == [page.json()["request_id"]]
    assert client.app.state.marquee.exposures.pending() == []  # type: ignore[attr-defined]  # not journaled too


def test_unreachable_stream_answers_503_and_stores_nothing(make_client: Callable[..., TestClient]) -> None:
    nowhere = f"nats://127.0.0.1:{free_port()}"
    client = make_client(event_bus=nowhere, event_bus_prefix="test-unreachable")
    headers = signup_and_login(client, "down@example.com")
    profile = make_profile(client, headers, "Cy")["profile_id"]

    response = watch(client, headers, profile, "m_space", 0.5, event_id="evt-never")
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert "retry" in response.json()["detail"]
    # Refused means not stored: the insert was rolled back, so a later retry is a new event.
    assert client.get(f"/v1/profiles/{profile}/history", headers=headers).json()["items"] == []
    # A home page still answers; its exposures fall back to the local journal.
    page = client.get(f"/v1/profiles/{profile}/home", headers=headers)
    assert page.status_code == 200
    assert {e.request_id for e in client.app.state.marquee.exposures.pending()} == {page.json()["request_id"]}  # type: ignore[attr-defined]


def test_stream_lost_mid_run_gives_503_then_recovers(
    make_client: Callable[..., TestClient], nats_url: str, bus_topology: Topology
) -> None:
    from tests.bus.proxy import CuttableProxy

    proxy = CuttableProxy().open()
    try:
        client = bus_client(make_client, proxy.url, bus_topology)
        bus = client.app.state.marquee.bus  # type: ignore[attr-defined]
        headers = signup_and_login(client, "cut@example.com")
        profile = make_profile(client, headers, "Di")["profile_id"]
        assert watch(client, headers, profile, "m_space", 0.2, event_id="before-cut").status_code == 201

        proxy.cut()  # injected fault: the connection to NATS is gone
        deadline = time.monotonic() + 10
        while bus.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        refused = watch(client, headers, profile, "m_space", 0.4, event_id="during-cut")
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        history = client.get(f"/v1/profiles/{profile}/history", headers=headers).json()["items"]
        assert [item["position_s"] for item in history] == [200]  # the refused event was not stored

        proxy.open()  # NATS is back: the client reconnects on its own and the retry is accepted
        deadline = time.monotonic() + 15
        while not bus.connected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert watch(client, headers, profile, "m_space", 0.4, event_id="during-cut").status_code == 201
    finally:
        proxy.close()
    ids = [h["Nats-Msg-Id"] for h, _ in stream_messages(nats_url, bus_topology, bus_topology.subject(EventKind.WATCH))]
    assert ids == ["before-cut", "during-cut"]


def test_lost_ack_is_a_503_and_the_retry_is_stored_once(
    make_client: Callable[..., TestClient], nats_url: str, bus_topology: Topology
) -> None:
    """The answer waits for the ack: stored by the stream but unacknowledged is still a 503, never a 2xx."""
    from tests.bus.proxy import CuttableProxy

    proxy = CuttableProxy().open()
    try:
        client = bus_client(make_client, proxy.url, bus_topology)
        bus = client.app.state.marquee.bus  # type: ignore[attr-defined]
        headers = signup_and_login(client, "mute@example.com")
        profile = make_profile(client, headers, "Ed")["profile_id"]

        proxy.muted = True  # injected fault: the publish reaches the stream, its ack never comes back
        started = time.monotonic()
        refused = watch(client, headers, profile, "m_space", 0.3, event_id="ack-lost")
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert time.monotonic() - started >= bus.timeout_s * 0.9  # it waited for the ack
        assert client.get(f"/v1/profiles/{profile}/history", headers=headers).json()["items"] == []
        stored = stream_messages(nats_url, bus_topology, bus_topology.subject(EventKind.WATCH))
        assert [h["Nats-Msg-Id"] for h, _ in stored] == ["ack-lost"]  # the stream did store it

        proxy.muted = False
        proxy.cut()  # the muted connection lost protocol bytes: start a clean one
        proxy.open()
        deadline = time.monotonic() + 15
        while not bus.connected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert watch(client, headers, profile, "m_space", 0.3, event_id="ack-lost").status_code == 201
    finally:
        proxy.close()
    stored = stream_messages(nats_url, bus_topology, bus_topology.subject(EventKind.WATCH))
    assert [h["Nats-Msg-Id"] for h, _ in stored] == ["ack-lost"]  # the retry was de-duplicated by its id
