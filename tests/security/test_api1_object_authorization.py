"""OWASP API1:2023 Broken Object Level Authorization: one account never reaches another's objects."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from tests.api.support import make_profile, signup_and_login, watch

EVENT = {"event_id": "x", "title_id": "m_space", "position_s": 1, "duration_s": 9}


def test_an_account_gets_404_on_every_route_with_another_accounts_profile(api: TestClient) -> None:
    victim = signup_and_login(api, f"{uuid.uuid4().hex}@example.com")
    theirs = make_profile(api, victim, "Victim")["profile_id"]
    assert watch(api, victim, theirs, "m_space", 0.5).status_code == 201
    attacker = signup_and_login(api, f"{uuid.uuid4().hex}@example.com")
    make_profile(api, attacker, "Me")
    attempts = [
        ("GET", f"/v1/profiles/{theirs}", None),
        ("PATCH", f"/v1/profiles/{theirs}", {"name": "owned"}),
        ("DELETE", f"/v1/profiles/{theirs}", None),
        ("GET", f"/v1/profiles/{theirs}/history", None),
        ("GET", f"/v1/profiles/{theirs}/continue-watching", None),
        ("GET", f"/v1/profiles/{theirs}/home", None),
        ("POST", f"/v1/profiles/{theirs}/events", EVENT),
        ("GET", f"/v1/titles?profile_id={theirs}", None),
        ("GET", f"/v1/titles/m_space?profile_id={theirs}", None),
        ("GET", f"/v1/search?q=space&profile_id={theirs}", None),
        ("GET", f"/v1/playback/m_space/manifest?profile_id={theirs}", None),
    ]  # fmt: skip
    for method, path, body in attempts:
        response = api.request(method, path, json=body, headers=attacker)
        assert response.status_code == 404, (method, path, response.status_code)
    assert api.get(f"/v1/profiles/{theirs}", headers=victim).json()["name"] == "Victim"  # untouched
