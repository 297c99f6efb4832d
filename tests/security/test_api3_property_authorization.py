"""OWASP API3:2023 Broken Object Property Level Authorization: no mass assignment, no leaked properties."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from tests.api.support import make_profile, signup_and_login


def test_bodies_refuse_properties_a_client_may_not_set(api: TestClient) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    for extra in ({"is_admin": True}, {"account_id": "x"}, {"password_hash": "x"}):
        response = api.post("/v1/auth/signup", json={"email": email, "password": "long enough pw", **extra})
        assert response.status_code == 422, extra
    headers = signup_and_login(api, email)
    profile = make_profile(api, headers, "P")["profile_id"]
    for extra in ({"account_id": "other"}, {"country": "GB"}, {"profile_id": "x"}):
        assert api.patch(f"/v1/profiles/{profile}", json=extra, headers=headers).status_code == 422, extra


def test_responses_never_carry_credentials_or_internal_flags(api: TestClient) -> None:
    headers = signup_and_login(api, f"{uuid.uuid4().hex}@example.com")
    account = api.get("/v1/account", headers=headers).json()
    assert not {"password_hash", "is_admin", "password"} & set(account)
    assert "argon2" not in api.get("/v1/account", headers=headers).text
