"""Profiles: limits, kids rules, unknown fields, and isolation between accounts on every id route."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .support import make_profile, signup_and_login, watch


def test_profile_crud_and_kids_rules(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com", country="GB")
    kid = make_profile(client, headers, "Kid", is_kids=True)
    assert kid["maturity_level"] == 1 and kid["is_kids"] and kid["country"] == "GB"
    adult = make_profile(client, headers, "Adult", language="es")
    assert adult["maturity_level"] == 3 and adult["language"] == "es"
    too_old = client.post("/v1/profiles", json={"name": "K2", "is_kids": True, "maturity_level": 3}, headers=headers)
    assert too_old.status_code == 422
    assert "at most 1" in str(too_old.json())
    listed = client.get("/v1/profiles", headers=headers).json()
    assert [p["name"] for p in listed] == ["Kid", "Adult"]
    patched = client.patch(f"/v1/profiles/{adult['profile_id']}", json={"name": "Grown-up"}, headers=headers)
    assert patched.status_code == 200 and patched.json()["name"] == "Grown-up"
    assert patched.json()["language"] == "es"
    # Turning a profile into a kids profile lowers its level; asking for more than kids allow is refused.
    to_kids = client.patch(f"/v1/profiles/{adult['profile_id']}", json={"is_kids": True}, headers=headers)
    assert to_kids.json()["maturity_level"] == 1
    bad = client.patch(f"/v1/profiles/{kid['profile_id']}", json={"maturity_level": 3}, headers=headers)
    assert bad.status_code == 422
    # The schema documents null as allowed: it keeps the value, like an omitted field (issue 16, finding 7).
    null = client.patch(f"/v1/profiles/{kid['profile_id']}", json={"name": None}, headers=headers)
    assert null.status_code == 200 and null.json()["name"] == kid["name"]
    assert client.delete(f"/v1/profiles/{kid['profile_id']}", headers=headers).status_code == 204
    assert client.get(f"/v1/profiles/{kid['profile_id']}", headers=headers).status_code == 404


def test_unknown_or_extra_fields_get_422(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com")
    assert client.post("/v1/profiles", json={"name": "A", "favourite": "x"}, headers=headers).status_code == 422
    profile = make_profile(client, headers, "A")
    response = client.patch(f"/v1/profiles/{profile['profile_id']}", json={"account_id": "other"}, headers=headers)
    assert response.status_code == 422
    event = {"event_id": "e1", "title_id": "m_space", "position_s": 1, "duration_s": 10, "rating": 5}
    assert client.post(f"/v1/profiles/{profile['profile_id']}/events", json=event, headers=headers).status_code == 422


def test_at_most_five_profiles(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com")
    for i in range(5):
        make_profile(client, headers, f"P{i}")
    sixth = client.post("/v1/profiles", json={"name": "P5"}, headers=headers)
    assert sixth.status_code == 409
    assert "at most 5" in sixth.json()["detail"]


def test_another_accounts_profile_is_404_on_every_route(client: TestClient) -> None:
    owner = signup_and_login(client, "owner@example.com")
    intruder = signup_and_login(client, "intruder@example.com")
    theirs = make_profile(client, owner, "Owner")["profile_id"]
    mine = make_profile(client, intruder, "Intruder")["profile_id"]
    assert watch(client, owner, theirs, "m_space").status_code == 201
    event = {"event_id": "x1", "title_id": "m_space", "position_s": 10, "duration_s": 100}
    attempts = {
        "get profile": client.get(f"/v1/profiles/{theirs}", headers=intruder),
        "patch profile": client.patch(f"/v1/profiles/{theirs}", json={"name": "pwned"}, headers=intruder),
        "delete profile": client.delete(f"/v1/profiles/{theirs}", headers=intruder),
        "post event": client.post(f"/v1/profiles/{theirs}/events", json=event, headers=intruder),
        "history": client.get(f"/v1/profiles/{theirs}/history", headers=intruder),
        "continue watching": client.get(f"/v1/profiles/{theirs}/continue-watching", headers=intruder),
        "home": client.get(f"/v1/profiles/{theirs}/home", headers=intruder),
        "search": client.get("/v1/search", params={"q": "space", "profile_id": theirs}, headers=intruder),
        "titles": client.get("/v1/titles", params={"profile_id": theirs}, headers=intruder),
        "title": client.get("/v1/titles/m_space", params={"profile_id": theirs}, headers=intruder),
        "manifest": client.get("/v1/playback/m_space/manifest", params={"profile_id": theirs}, headers=intruder),
    }
    for route, response in attempts.items():
        assert response.status_code == 404, f"{route}: {response.status_code} {response.text}"
        assert theirs in response.json()["detail"]
    # The same routes work for the intruder's own profile, and the owner's data is untouched.
    assert client.get(f"/v1/profiles/{mine}/history", headers=intruder).json()["items"] == []
    assert client.get(f"/v1/profiles/{theirs}", headers=owner).json()["name"] == "Owner"
    history = client.get(f"/v1/profiles/{theirs}/history", headers=owner).json()["items"]
    assert [h["title_id"] for h in history] == ["m_space"]
    # Unknown ids look exactly like other accounts' ids.
    assert client.get("/v1/profiles/does-not-exist", headers=intruder).status_code == 404
