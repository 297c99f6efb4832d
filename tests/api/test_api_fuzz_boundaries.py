"""Every boundary validates (issue 16, findings 1, 2 and 7), on SQLite and on PostgreSQL.

Each case was a 201 that poisoned the platform, or a 500 (often before login),
or a 422 in an undocumented shape. Now: a 4xx whose ``detail`` is a list naming
the field, and a poisoned row already stored stops neither the lake export nor
the popularity refresh.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from catalog_api.app import export_events_now
from catalog_api.db.tables import WatchEventRow
from core.lake import Lake
from core.settings import Settings

from .backends import BACKENDS, backend_client
from .support import make_profile, signup_and_login

pytestmark = pytest.mark.integration


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, settings: Settings, lake: Lake) -> Iterator[TestClient]:
    postgres_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    with backend_client(request.param, settings, postgres_url) as client:
        yield client


def _assert_422_names(response: object, field: str) -> None:
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    detail = response.json()["detail"]  # type: ignore[attr-defined]
    assert isinstance(detail, list) and detail, detail
    assert all({"loc", "msg", "type"} <= set(item) for item in detail)
    assert any(field in [str(part) for part in item["loc"]] for item in detail), detail


def _event(**changes: object) -> dict[str, object]:
    return {"event_id": "e-1", "title_id": "m_space", "position_s": 10, "duration_s": 100, **changes}


def test_nul_bytes_are_refused_naming_the_field(api: TestClient) -> None:
    _assert_422_names(api.post("/v1/auth/signup", json={"email": "a\x00@x.io", "password": "long enough pw"}), "email")
    _assert_422_names(api.post("/v1/auth/token", data={"username": "a\x00@x.io", "password": "pw pw pw pw"}), "body")
    headers = signup_and_login(api, "nul@example.com")
    _assert_422_names(api.post("/v1/profiles", json={"name": "a\x00b"}, headers=headers), "name")
    profile = make_profile(api, headers, "P")["profile_id"]
    events = f"/v1/profiles/{profile}/events"
    _assert_422_names(api.post(events, json=_event(event_id="e\x00"), headers=headers), "event_id")
    _assert_422_names(api.post(events, json=_event(device="tv\x00"), headers=headers), "device")
    _assert_422_names(api.get("/v1/profiles/ab%00cd/history", headers=headers), "path")
    _assert_422_names(api.get("/v1/titles", params={"profile_id": "a\x00"}, headers=headers), "profile_id")
    _assert_422_names(api.get("/v1/titles/m_space", params={"profile_id": "a\x00"}, headers=headers), "profile_id")


def test_a_lone_surrogate_gets_a_422_not_a_crash(api: TestClient) -> None:
    headers = signup_and_login(api, "sur@example.com")
    raw = '{"name": "a\\ud800b"}'  # valid JSON text, invalid Unicode
    response = api.post("/v1/profiles", content=raw, headers={**headers, "Content-Type": "application/json"})
    _assert_422_names(response, "name")
    json.loads(response.content.decode("utf-8"))  # the answer itself is valid UTF-8 JSON
    extra = api.post(
        "/v1/profiles", content='{"name": "x", "\\udfff": 1}', headers={**headers, "Content-Type": "application/json"}
    )
    assert extra.status_code == 422 and isinstance(extra.json()["detail"], list)


@pytest.mark.parametrize(
    ("ts", "why"),
    [
        ("9999-12-31T23:59:59Z", "far future: overflowed every export"),
        ("0001-01-01T00:00:00+14:00", "before year 1 in UTC"),
        ("1970-01-01T00:00:00Z", "before the floor"),
        ("2999-01-01T00:00:00Z", "far future"),
    ],
)
def test_timestamps_outside_the_window_are_refused(api: TestClient, ts: str, why: str) -> None:
    headers = signup_and_login(api, "ts@example.com")
    profile = make_profile(api, headers, "P")["profile_id"]
    response = api.post(f"/v1/profiles/{profile}/events", json=_event(ts=ts), headers=headers)
    _assert_422_names(response, "ts")


def test_a_timestamp_inside_the_window_is_kept_in_utc(api: TestClient) -> None:
    headers = signup_and_login(api, "ok@example.com")
    profile = make_profile(api, headers, "P")["profile_id"]
    response = api.post(f"/v1/profiles/{profile}/events", json=_event(ts="2026-01-01T12:00:00+02:00"), headers=headers)
    assert response.status_code == 201, response.text
    history = api.get(f"/v1/profiles/{profile}/history", headers=headers).json()["items"]
    assert datetime.fromisoformat(history[0]["last_watched"]).astimezone(UTC).hour == 10


@pytest.mark.parametrize("value", [2**31, 2**63, 2**64 + 5])
def test_integers_beyond_the_column_are_refused(api: TestClient, value: int) -> None:
    headers = signup_and_login(api, "int@example.com")
    profile = make_profile(api, headers, "P")["profile_id"]
    events = f"/v1/profiles/{profile}/events"
    _assert_422_names(api.post(events, json=_event(position_s=value, duration_s=value), headers=headers), "duration_s")
    _assert_422_names(api.post(events, json=_event(duration_s=value), headers=headers), "duration_s")


def test_maturity_false_is_not_zero_and_patch_nulls_keep_values(api: TestClient) -> None:
    headers = signup_and_login(api, "m@example.com")
    _assert_422_names(
        api.post("/v1/profiles", json={"name": "K", "maturity_level": False}, headers=headers), "maturity_level"
    )
    profile = make_profile(api, headers, "P", language="es")
    patched = api.patch(
        f"/v1/profiles/{profile['profile_id']}",
        json={"name": None, "language": None, "maturity_level": 2},
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["language"], patched.json()["maturity_level"]) == ("P", "es", 2)


def test_a_422_raised_by_a_service_has_the_documented_shape(api: TestClient) -> None:
    headers = signup_and_login(api, "shape@example.com")
    kid = make_profile(api, headers, "K", is_kids=True)
    response = api.patch(f"/v1/profiles/{kid['profile_id']}", json={"maturity_level": 3}, headers=headers)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list) and "at most 1" in response.json()["detail"][0]["msg"]


def test_a_poisoned_row_is_quarantined_and_stops_neither_export_nor_refresh(api: TestClient, lake: Lake) -> None:
    from catalog_api.db.tables import QuarantinedEventRow

    state = api.app.state.marquee  # type: ignore[attr-defined]
    headers = signup_and_login(api, "poison@example.com")
    profile = make_profile(api, headers, "P")["profile_id"]
    # A row stored before validation existed (the API refuses it now): year 9999.
    with state.engine.begin() as connection:
        connection.execute(
            insert(WatchEventRow).values(
                event_id="poison", profile_id=profile, title_id="m_crime", position_s=1, duration_s=10,
                ts=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), device="tv", country="US",
            )
        )  # fmt: skip
    good = api.post(f"/v1/profiles/{profile}/events", json=_event(event_id="good-1"), headers=headers)
    assert good.status_code == 201
    assert export_events_now(state) == 1  # the good event went through
    assert set(lake.read("watch_events")["event_id"]) == {"good-1"}
    with state.sessions() as session:
        quarantined = session.scalars(select(QuarantinedEventRow)).all()
    assert [q.event_id for q in quarantined] == ["poison"] and "ts" in quarantined[0].reason
    assert (
        api.post(f"/v1/profiles/{profile}/events", json=_event(event_id="good-2"), headers=headers).status_code == 201
    )
    assert export_events_now(state) == 1  # the mark moved past the poisoned row: the export is not stuck
    table = state.popularity.refresh()
    assert table.plays.get("m_space") == 1.0  # the refresh ran, with the good events
