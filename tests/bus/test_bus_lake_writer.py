"""The lake writer consumer against the real stream: idempotent writes, poison quarantined, retries.

Skipped without a NATS server (failed under MARQUEE_REQUIRE_SERVICES=1); each
test uses a stream of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta

from catalog_api.bus_lake_writer import LAKE_WRITER, LakeWriter
from catalog_api.services.exposures import ExposurePage
from core.bus import ConsumerStats, Delivery, EventKind, Handler, Topology, encode, run_consumer
from core.bus.topology import REASON_HEADER
from core.lake import Lake
from core.settings import Settings
from tests.bus.stream import publish, stream_messages

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def watch_record(event_id: str, ts: datetime = NOW) -> dict[str, object]:
    return {
        "event_id": event_id,
        "profile_id": "p1",
        "title_id": "m_space",
        "ts": ts,
        "position_s": 10,
        "duration_s": 100,
        "device": "web",
        "country": "US",
    }


def consume(url: str, topology: Topology, handler: Handler, name: str = LAKE_WRITER.name) -> ConsumerStats:
    spec = dataclasses.replace(LAKE_WRITER, name=name, ack_wait_s=1.0, fetch_timeout_s=0.5)
    return asyncio.run(run_consumer(url, topology, spec, handler, until_idle=True))


def test_lake_writer_writes_each_event_once_and_quarantines_poison(
    settings: Settings, nats_url: str, bus_topology: Topology
) -> None:
    watch = bus_topology.subject(EventKind.WATCH)
    page = ExposurePage("req-1", NOW, "p1", [("top", "v1", ["m_space", "m_sea"])], [])
    report = {
        "seq": 7,
        "ts": NOW,
        "session_id": "sess-0001",
        "report_seq": 0,
        "profile_id": "p1",
        "title_id": "m_space",
        "format": "hls",
        "device": "web",
        "edge": None,
        "country": "US",
        "startup_ms": 800,
        "played_s": 30.0,
        "rebuffer_count": 0,
        "rebuffer_s": 0.0,
        "bitrate_switches": 1,
        "avg_bitrate_kbps": 2400,
        "fatal_error": None,
        "ended": False,
    }
    items = [(watch, f"e{i}", encode(watch_record(f"e{i}"))) for i in range(5)]
    items += [
        (watch, "e0-again", encode(watch_record("e0"))),  # a republish past the de-duplication window
        (watch, "far-future", encode(watch_record("far-future", datetime(9999, 1, 1, tzinfo=UTC)))),
        (watch, "garbled", b"{not json"),
        (watch, "no-profile", encode({k: v for k, v in watch_record("no-profile").items() if k != "profile_id"})),
        (bus_topology.subject(EventKind.EXPOSURE), "req-1", page.to_json().encode()),
        (bus_topology.subject(EventKind.PLAYBACK), "sess-0001/0", encode(report)),
    ]
    publish(nats_url, bus_topology, items)
    lake = Lake(settings.workspace.lake_dir)

    stats = consume(nats_url, bus_topology, LakeWriter(lake))

    assert stats.quarantined == 3 and stats.handled == 8
    assert sorted(lake.read("watch_events")["event_id"]) == ["e0", "e1", "e2", "e3", "e4"]
    assert list(lake.read("exposures")["title_id"]) == ["m_space", "m_sea"]
    assert list(lake.read("playback_reports")["seq"]) == [7]
    quarantined = stream_messages(nats_url, bus_topology, bus_topology.quarantine_subject(EventKind.WATCH))
    reasons = {
        json.loads(body)["event_id"] if body.startswith(b'{"') else "garbled": h[REASON_HEADER]
        for h, body in quarantined
    }
    assert "in the future" in reasons["far-future"]
    assert "unreadable" in reasons["garbled"]
    assert "profile_id" in reasons["no-profile"]

    # Everything delivered again (a new durable reads the stream from the start): nothing is written twice.
    again = consume(nats_url, bus_topology, LakeWriter(lake), name="lake-writer-replay")
    assert again.handled == 8
    assert len(lake.read("watch_events")) == 5 and len(lake.read("exposures")) == 2
    assert len(lake.read("playback_reports")) == 1


def test_a_failing_batch_is_retried_and_nothing_is_lost(
    settings: Settings, nats_url: str, bus_topology: Topology
) -> None:
    watch = bus_topology.subject(EventKind.WATCH)
    publish(nats_url, bus_topology, [(watch, f"e{i}", encode(watch_record(f"e{i}"))) for i in range(6)])
    lake = Lake(settings.workspace.lake_dir)
    writer = LakeWriter(lake)
    failures = {"left": 3}

    def flaky(deliveries: list[Delivery]) -> dict[int, str]:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError("lake unavailable")  # injected fault: the write fails, nothing is acked
        return writer(deliveries)

    stats = consume(nats_url, bus_topology, flaky)

    assert stats.retried >= 1 and stats.quarantined == 0
    assert sorted(lake.read("watch_events")["event_id"]) == [f"e{i}" for i in range(6)]
