"""Watch events: idempotent durable writes, history, Continue Watching, export to the lake once."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from catalog_api.app import export_events_now
from catalog_api.db.tables import WatchEventRow
from core.lake import Lake

from .support import make_profile, signup_and_login, watch


def _count(client: TestClient) -> int:
    with client.app.state.marquee.sessions() as session:  # type: ignore[attr-defined]
        return int(session.scalar(select(func.count()).select_from(WatchEventRow)) or 0)


def test_retried_event_is_stored_once(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com")
    profile = make_profile(client, headers, "A")["profile_id"]
    first = watch(client, headers, profile, "m_space", 0.3, event_id="evt-1")
    again = watch(client, headers, profile, "m_space", 0.3, event_id="evt-1")
    assert (first.status_code, first.json()["created"]) == (201, True)
    assert (again.status_code, again.json()["created"]) == (200, False)
    assert _count(client) == 1
    # The 2xx came after the commit: a fresh session (another connection) sees the row.
    assert client.get(f"/v1/profiles/{profile}/history", headers=headers).json()["items"][0]["position_s"] == 300


def test_bad_events_are_refused_with_reasons(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com")
    profile = make_profile(client, headers, "A")["profile_id"]
    unknown = watch(client, headers, profile, "no-such-title")
    assert unknown.status_code == 404 and "no-such-title" in unknown.json()["detail"]
    body = {"event_id": "e", "title_id": "m_space", "position_s": 20, "duration_s": 10}
    over = client.post(f"/v1/profiles/{profile}/events", json=body, headers=headers)
    assert over.status_code == 422 and "may not exceed" in over.text
    assert _count(client) == 0


def test_history_and_continue_watching(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com")
    profile = make_profile(client, headers, "A")["profile_id"]
    watch(client, headers, profile, "m_space", 0.1, ts="2026-01-01T10:00:00Z")
    watch(client, headers, profile, "m_space", 0.4, ts="2026-01-01T10:10:00Z")  # later position of the same title
    watch(client, headers, profile, "m_laugh", 0.99, ts="2026-01-01T11:00:00Z")  # finished movie: not continued
    watch(client, headers, profile, "s_lane:1:2", 1.0, ts="2026-01-01T12:00:00Z")  # finished episode
    history = client.get(f"/v1/profiles/{profile}/history", headers=headers).json()["items"]
    assert [h["title_id"] for h in history] == ["s_lane:1:2", "m_laugh", "m_space"]
    assert history[2]["position_s"] == 400 and history[0]["series_id"] == "s_lane"
    entries = client.get(f"/v1/profiles/{profile}/continue-watching", headers=headers).json()
    assert [(e["title_id"], e["reason"]) for e in entries] == [
        ("s_lane:2:1", "next_episode"),  # season 1 ended: next season's first episode
        ("m_space", "in_progress"),
    ]
    assert entries[1]["position_s"] == 400


def test_events_are_exported_to_the_lake_exactly_once(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com")
    profile = make_profile(client, headers, "A")["profile_id"]
    for i, title in enumerate(["m_space", "m_laugh", "s_lane:1:1"]):
        watch(client, headers, profile, title, 0.5, event_id=f"e{i}")
    state = client.app.state.marquee  # type: ignore[attr-defined]
    lake: Lake = state.lake
    assert export_events_now(state) == 3
    assert export_events_now(state) == 0
    watch(client, headers, profile, "m_paris", 0.5, event_id="e9")
    watch(client, headers, profile, "m_paris", 0.5, event_id="e9")  # a retry is not exported twice either
    assert export_events_now(state) == 1
    exported = lake.read("watch_events")
    assert sorted(exported["event_id"]) == ["e0", "e1", "e2", "e9"]
    assert set(exported["profile_id"]) == {profile}
    assert exported.loc[exported["event_id"] == "e2", "title_id"].item() == "s_lane:1:1"
