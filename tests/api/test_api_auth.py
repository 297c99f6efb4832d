"""Auth: sign-up, OAuth2 password login, JWT checks, refresh rotation, logout, rate limits."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
from fastapi.testclient import TestClient

from catalog_api.options import ApiOptions

from .support import make_profile, signup_and_login


def test_signup_login_and_me(client: TestClient) -> None:
    headers = signup_and_login(client, "Viewer@Example.com", country="gb", plan="premium")
    me = client.get("/v1/account", headers=headers)
    assert me.status_code == 200
    assert me.json()["email"] == "viewer@example.com"
    assert me.json()["country"] == "GB"
    assert me.json()["plan"] == "premium"


def test_signup_rejects_duplicates_extra_fields_and_bad_values(client: TestClient) -> None:
    body = {"email": "a@example.com", "password": "long enough pw"}
    first = client.post("/v1/auth/signup", json=body)
    assert first.status_code == 201
    duplicate = client.post("/v1/auth/signup", json={**body, "password": "another long pw"})
    # The same answer as a new account's (no enumeration); the first password stays the account's.
    assert (duplicate.status_code, duplicate.json()) == (201, first.json())
    assert "a@example.com" not in duplicate.text and "log in" in duplicate.json()["detail"]  # names no account
    assert (
        client.post("/v1/auth/token", data={"username": "a@example.com", "password": "another long pw"}).status_code
        == 401
    )
    assert (
        client.post("/v1/auth/token", data={"username": "a@example.com", "password": "long enough pw"}).status_code
        == 200
    )
    assert client.post("/v1/auth/signup", json={**body, "email": "b@example.com", "role": "admin"}).status_code == 422
    assert client.post("/v1/auth/signup", json={"email": "c@example.com", "password": "short"}).status_code == 422
    assert client.post("/v1/auth/signup", json={**body, "email": "d@example.com", "country": "U1"}).status_code == 422


def test_wrong_password_and_unknown_user_get_the_same_401(client: TestClient) -> None:
    signup_and_login(client, "a@example.com")
    wrong = client.post("/v1/auth/token", data={"username": "a@example.com", "password": "nope nope"})
    unknown = client.post("/v1/auth/token", data={"username": "x@example.com", "password": "nope nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.headers["WWW-Authenticate"] == "Bearer"


def _token(client: TestClient, **overrides: object) -> str:
    settings = client.app.state.marquee.settings  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    payload = {
        "sub": "someone",
        "jti": "j1",
        "typ": "access",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    payload.update(overrides)
    algorithm = str(payload.pop("alg", "HS256"))
    key = str(payload.pop("key", settings.jwt_secret))
    return jwt.encode(payload, key, algorithm=algorithm)


def test_tokens_with_bad_exp_iss_aud_alg_or_key_are_refused(client: TestClient) -> None:
    account_id = client.get("/v1/account", headers=signup_and_login(client, "b@example.com")).json()["account_id"]
    good = _token(client, sub=account_id)
    assert client.get("/v1/account", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    bad = {
        "expired": _token(client, sub=account_id, exp=int((datetime.now(UTC) - timedelta(seconds=5)).timestamp())),
        "issuer": _token(client, sub=account_id, iss="someone-else"),
        "audience": _token(client, sub=account_id, aud="other-clients"),
        "algorithm": _token(client, sub=account_id, alg="HS384"),
        "key": _token(client, sub=account_id, key="another-secret-that-is-long-enough-0123456789"),
        "refresh as access": _token(client, sub=account_id, typ="refresh"),
        "unsigned": jwt.encode({"sub": account_id}, "", algorithm="none"),
    }
    for reason, token in bad.items():
        response = client.get("/v1/account", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, reason
    assert client.get("/v1/account").status_code == 401


def test_refresh_rotates_and_logout_revokes(client: TestClient) -> None:
    client.post("/v1/auth/signup", json={"email": "a@example.com", "password": "long enough pw"})
    pair = client.post("/v1/auth/token", data={"username": "a@example.com", "password": "long enough pw"}).json()
    refreshed = client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["access_token"] != pair["access_token"]
    # An access token cannot refresh.
    assert client.post("/v1/auth/refresh", json={"refresh_token": new["access_token"]}).status_code == 401
    # The used refresh token is revoked: replaying it fails and ends its login, access tokens included.
    assert client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401
    assert client.get("/v1/account", headers={"Authorization": f"Bearer {new['access_token']}"}).status_code == 401
    new = client.post("/v1/auth/token", data={"username": "a@example.com", "password": "long enough pw"}).json()
    headers = {"Authorization": f"Bearer {new['access_token']}"}
    assert client.get("/v1/account", headers=headers).status_code == 200
    profile_id = make_profile(client, headers, "me")["profile_id"]
    title_id = client.get("/v1/titles", params={"limit": 1}, headers=headers).json()["items"][0]["title_id"]
    hot_routes = (f"/v1/profiles/{profile_id}/home", f"/v1/playback/{title_id}/manifest?profile_id={profile_id}")
    for path in hot_routes:  # the routes that read token, revocation and profile in one statement
        assert client.get(path, headers=headers).status_code == 200, path
    logout = client.post("/v1/auth/logout", json={"refresh_token": new["refresh_token"]}, headers=headers)
    assert logout.status_code == 204
    assert client.get("/v1/account", headers=headers).status_code == 401
    for path in (*hot_routes, f"/v1/profiles/{'0' * 32}/home"):  # revoked beats unknown profile: 401, not 404
        response = client.get(path, headers=headers)
        assert response.status_code == 401 and "revoked" in response.text, path
    assert client.post("/v1/auth/refresh", json={"refresh_token": new["refresh_token"]}).status_code == 401


def test_login_rate_limit_answers_429_with_retry_after(make_client: Callable[..., TestClient]) -> None:
    client = make_client(options=ApiOptions(login_limit=3, login_window_s=60))
    client.post("/v1/auth/signup", json={"email": "a@example.com", "password": "long enough pw"})
    codes = [
        client.post("/v1/auth/token", data={"username": "a@example.com", "password": "wrong guess"}).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    limited = client.post("/v1/auth/token", data={"username": "a@example.com", "password": "long enough pw"})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


def test_per_account_rate_limit(make_client: Callable[..., TestClient]) -> None:
    client = make_client(options=ApiOptions(account_limit=5, account_window_s=60))
    headers = signup_and_login(client, "a@example.com")
    codes = [client.get("/v1/profiles", headers=headers).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    other = signup_and_login(client, "b@example.com")
    assert client.get("/v1/profiles", headers=other).status_code == 200


def test_a_remembered_access_token_still_expires_on_time() -> None:
    from catalog_api.errors import UnauthorizedError
    from catalog_api.security.tokens import TokenIssuer

    issuer = TokenIssuer("a-secret-that-is-long-enough-for-hs256-0123456789", "marquee", "clients")
    token, claims = issuer.issue("acct", "access", now=datetime.now(UTC) - issuer.access_ttl + timedelta(seconds=1.5))
    first = issuer.verify(token, "access")  # verified and remembered
    assert first.jti == claims.jti and issuer.verify(token, "access") is first  # from memory
    time.sleep(max(0.0, claims.expires_at.timestamp() - time.time()) + 0.05)
    try:
        issuer.verify(token, "access")
    except UnauthorizedError as exc:
        assert "expired" in str(exc)
    else:
        raise AssertionError("an expired remembered token was accepted")
    other = TokenIssuer("another-secret-long-enough-for-hs256-0123456789", "marquee", "clients")
    try:
        other.verify(issuer.issue("acct", "access")[0], "access")
    except UnauthorizedError:
        pass
    else:
        raise AssertionError("a token signed with another key was accepted")
