"""Property tests per route family (issue 16): whatever a client sends, never a 5xx.

Hypothesis draws values from the whole space a JSON client can send (any
Unicode including NUL and lone surrogates, integers far beyond 2^63, booleans
where integers belong, timestamps from year 1 to 9999 in any offset), and the
API must answer below 500, with a 422 ``detail`` that is always a list, and
what it accepted must read back unchanged. Examples are bounded so the module
runs in well under a minute.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog_api.app import create_app
from catalog_api.options import ApiOptions
from core.settings import Settings

from .support import fill_lake, free_port, make_profile, signup_and_login

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

any_text = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)
any_int = st.one_of(st.integers(), st.integers(min_value=2**31 - 2, max_value=2**64 + 2), st.booleans())
json_value = st.one_of(st.none(), any_text, any_int, st.floats(allow_nan=False), st.lists(st.integers(), max_size=2))
any_ts = st.datetimes(
    timezones=st.one_of(st.none(), st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-839, 839)))
)


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    home: Path = tmp_path_factory.mktemp("fuzz") / "ws"
    base = Settings(home=home, serving_url=f"http://127.0.0.1:{free_port()}")
    base.workspace.ensure()
    fill_lake(base)
    options = ApiOptions(row_size=6, account_limit=10**6, client_limit=10**6, login_limit=10**6)
    with TestClient(create_app(base, options)) as client:
        headers = signup_and_login(client, "fuzz@example.com")
        profile = make_profile(client, headers, "Fuzz")["profile_id"]
        yield client, headers, profile


def _segment(value: str) -> str:
    """``value`` as one percent-encoded path segment (lone surrogates as the bytes a client would send)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def _sane(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code == 422:
        detail = response.json()["detail"]
        assert isinstance(detail, list) and all({"loc", "msg", "type"} <= set(d) for d in detail), detail


@FUZZ
@given(email=json_value, password=json_value, username=any_text, secret=any_text)
def test_auth_family(
    fuzz: tuple[TestClient, dict[str, str], str], email: Any, password: Any, username: str, secret: str
) -> None:
    client, _, _ = fuzz
    _sane(client.post("/v1/auth/signup", json={"email": email, "password": password}))
    _sane(client.post("/v1/auth/token", data={"username": username, "password": secret}))
    _sane(client.post("/v1/auth/refresh", json={"refresh_token": email}))


@FUZZ
@given(name=json_value, level=json_value, kids=json_value, language=json_value)
def test_profiles_family(
    fuzz: tuple[TestClient, dict[str, str], str], name: Any, level: Any, kids: Any, language: Any
) -> None:
    client, headers, profile = fuzz
    created = client.post(
        "/v1/profiles", json={"name": name, "maturity_level": level, "is_kids": kids}, headers=headers
    )
    _sane(created)
    if created.status_code == 201:
        assert created.json()["name"] == name and isinstance(level, int | None) and not isinstance(level, bool)
        client.delete(f"/v1/profiles/{created.json()['profile_id']}", headers=headers)
    _sane(client.patch(f"/v1/profiles/{profile}", json={"name": name, "language": language}, headers=headers))


@FUZZ
@given(event_id=json_value, position=any_int, duration=any_int, ts=st.one_of(any_ts, json_value), device=json_value)
def test_events_family(
    fuzz: tuple[TestClient, dict[str, str], str], event_id: Any, position: Any, duration: Any, ts: Any, device: Any
) -> None:
    client, headers, profile = fuzz
    body = {
        "event_id": event_id, "title_id": "m_space", "position_s": position, "duration_s": duration,
        "ts": ts.isoformat() if hasattr(ts, "isoformat") else ts, "device": device,
    }  # fmt: skip
    response = client.post(f"/v1/profiles/{profile}/events", json=body, headers=headers)
    _sane(response)
    if response.status_code == 201:
        assert 0 <= position <= duration < 2**31
    _sane(client.get(f"/v1/profiles/{profile}/history", headers=headers))


@FUZZ
@given(q=any_text, genre=any_text, profile_id=any_text, limit=any_int, title_id=any_text)
def test_catalog_family(
    fuzz: tuple[TestClient, dict[str, str], str], q: str, genre: str, profile_id: str, limit: Any, title_id: str
) -> None:
    client, headers, profile = fuzz
    params = {"q": q, "genre": genre, "limit": limit}
    _sane(client.get("/v1/search", params={**params, "profile_id": profile}, headers=headers))
    _sane(client.get("/v1/titles", params={"genre": genre, "limit": limit, "profile_id": profile_id}, headers=headers))
    _sane(client.get(f"/v1/titles/{_segment(title_id) or uuid.uuid4().hex}", headers=headers))


@FUZZ
@given(profile_id=any_text, title_id=any_text)
def test_home_and_playback_family(fuzz: tuple[TestClient, dict[str, str], str], profile_id: str, title_id: str) -> None:
    client, headers, profile = fuzz
    _sane(client.get(f"/v1/profiles/{_segment(profile_id) or profile}/home", headers=headers))
    _sane(
        client.get(
            f"/v1/playback/{_segment(title_id) or 'm_space'}/manifest", params={"profile_id": profile}, headers=headers
        )
    )
