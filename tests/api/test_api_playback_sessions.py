"""QoE beacons: ``/v1/profiles/{id}/playback-sessions`` validates, authorises, stores once, exports."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from catalog_api.app import export_events_now
from catalog_api.db.tables import PlaybackReportRow
from core.lake import Lake
from core.qoe import latest_reports

from .support import make_profile, signup_and_login


def _report(session_id: str = "sess-0001", seq: int = 0, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "session_id": session_id,
        "report_seq": seq,
        "title_id": "m_space",
        "format": "hls",
        "edge": "us-east",
        "startup_ms": 640,
        "played_s": 30.0,
        "rebuffer_count": 1,
        "rebuffer_s": 1.5,
        "bitrate_switches": 2,
        "avg_bitrate_kbps": 2800,
    }
    return body | fields


def _count(client: TestClient) -> int:
    with client.app.state.marquee.sessions() as session:  # type: ignore[attr-defined]
        return int(session.scalar(select(func.count()).select_from(PlaybackReportRow)) or 0)


def test_reports_are_stored_once_and_the_latest_describes_the_session(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com")
    profile = make_profile(client, headers, "A")["profile_id"]
    url = f"/v1/profiles/{profile}/playback-sessions"
    first = client.post(url, json=_report(seq=0, played_s=0.0, rebuffer_count=0, rebuffer_s=0.0), headers=headers)
    retry = client.post(url, json=_report(seq=0, played_s=0.0, rebuffer_count=0, rebuffer_s=0.0), headers=headers)
    final = client.post(url, json=_report(seq=1, played_s=58.5, ended=True), headers=headers)
    assert (first.status_code, first.json()["created"]) == (201, True)
    assert (retry.status_code, retry.json()["created"]) == (200, False)
    assert final.status_code == 201
    assert _count(client) == 2
    sessions = client.get(url, headers=headers).json()["items"]
    assert len(sessions) == 1
    session = sessions[0]
    assert (session["session_id"], session["played_s"], session["ended"]) == ("sess-0001", 58.5, True)
    assert session["rebuffer_ratio"] == round(1.5 / (58.5 + 1.5), 6)


def test_bad_reports_are_refused_with_reasons(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com")
    profile = make_profile(client, headers, "A")["profile_id"]
    url = f"/v1/profiles/{profile}/playback-sessions"
    cases = {
        "negative": (_report(rebuffer_s=-1.0), 422, "rebuffer_s"),
        "stall without count": (_report(rebuffer_count=0, rebuffer_s=2.0), 422, "rebuffer_count"),
        "format": (_report(format="mp4"), 422, "format"),
        "unknown field": (_report(bitrate="high"), 422, "bitrate"),
        "bad session id": (_report(session_id="a b"), 422, "session_id"),
        "unknown title": (_report(title_id="no-such-title"), 404, "no-such-title"),
    }
    for name, (body, status, word) in cases.items():
        answer = client.post(url, json=body, headers=headers)
        assert answer.status_code == status, (name, answer.text)
        assert word in answer.text, (name, answer.text)
    assert _count(client) == 0


def test_only_the_owner_reports_or_reads(client: TestClient) -> None:
    owner = signup_and_login(client, "owner@example.com")
    profile = make_profile(client, owner, "Owner")["profile_id"]
    other = signup_and_login(client, "other@example.com")
    other_profile = make_profile(client, other, "Other")["profile_id"]
    url = f"/v1/profiles/{profile}/playback-sessions"
    assert client.post(url, json=_report()).status_code == 401
    assert client.post(url, json=_report(), headers=other).status_code in {403, 404}
    assert client.get(url, headers=other).status_code in {403, 404}
    assert client.post(url, json=_report(), headers=owner).status_code == 201
    # Another profile cannot add reports to this profile's session.
    hijack = client.post(f"/v1/profiles/{other_profile}/playback-sessions", json=_report(seq=5), headers=other)
    assert hijack.status_code == 404
    assert _count(client) == 1


def test_reports_are_exported_to_the_lake_once(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com")
    profile = make_profile(client, headers, "A")["profile_id"]
    url = f"/v1/profiles/{profile}/playback-sessions"
    for body in (
        _report("sess-aaaa", 0),
        _report("sess-aaaa", 1, played_s=90.0),
        _report("sess-bbbb", 0, fatal_error="http_403", ended=True),
    ):
        assert client.post(url, json=body, headers=headers).status_code == 201
    state = client.app.state.marquee  # type: ignore[attr-defined]
    lake: Lake = state.lake
    export_events_now(state)
    export_events_now(state)  # nothing new: nothing appended twice
    reports = lake.read("playback_reports")
    assert len(reports) == 3
    sessions = latest_reports(reports).set_index("session_id")
    assert sessions.loc["sess-aaaa", "played_s"] == 90.0
    assert sessions.loc["sess-bbbb", "fatal_error"] == "http_403"
    assert set(reports["profile_id"]) == {profile}
