"""Maturity judged by the profile on every route that returns titles (issue 16, finding 5).

OWASP API1/API3 in a streaming service's terms (a kids profile must not reach
a mature title's data), and API10:2023 Unsafe Consumption of APIs: what the
model server answers is filtered again by the API.
"""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from tests.api.support import make_profile, signup_and_login, watch


def test_an_event_for_a_title_above_the_profile_is_refused(api: TestClient) -> None:
    headers = signup_and_login(api, f"{uuid.uuid4().hex}@example.com")
    kid = make_profile(api, headers, "Kid", is_kids=True)["profile_id"]
    response = watch(api, headers, kid, "m_crime", 0.5)  # R: level 3
    assert response.status_code == 403 and "maturity" in response.json()["detail"]
    assert watch(api, headers, kid, "m_ponies", 0.5).status_code == 201


def test_history_is_judged_by_the_profile_even_after_it_turns_kids(api: TestClient) -> None:
    headers = signup_and_login(api, f"{uuid.uuid4().hex}@example.com")
    profile = make_profile(api, headers, "Was adult")["profile_id"]
    assert watch(api, headers, profile, "m_crime", 0.5).status_code == 201
    assert watch(api, headers, profile, "m_ponies", 0.5).status_code == 201
    assert api.patch(f"/v1/profiles/{profile}", json={"is_kids": True}, headers=headers).status_code == 200
    history = api.get(f"/v1/profiles/{profile}/history", headers=headers).json()["items"]
    assert [item["title_id"] for item in history] == ["m_ponies"]
    continuing = api.get(f"/v1/profiles/{profile}/continue-watching", headers=headers).json()
    assert "m_crime" not in {item["title_id"] for item in continuing}


def test_title_routes_without_a_profile_do_not_leak_mature_titles_to_a_kids_account(api: TestClient) -> None:
    headers = signup_and_login(api, f"{uuid.uuid4().hex}@example.com")
    adult = make_profile(api, headers, "Adult")["profile_id"]
    assert api.get("/v1/titles/m_crime", headers=headers).status_code == 200  # no kids profile yet
    make_profile(api, headers, "Kid", is_kids=True)
    assert api.get("/v1/titles/m_crime", headers=headers).status_code == 403  # the kids context decides
    listed = {t["title_id"] for t in api.get("/v1/titles", params={"limit": 100}, headers=headers).json()["items"]}
    assert "m_crime" not in listed and "m_ponies" in listed
    # An adult profile named explicitly still sees its titles.
    assert api.get("/v1/titles/m_crime", params={"profile_id": adult}, headers=headers).status_code == 200
