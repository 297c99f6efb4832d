"""OWASP API2:2023 Broken Authentication (issue 16, findings 3, 4 and 6).

No published secret forges anything; refresh tokens come in families that a
reuse revokes; logout ends the login; failed logins back off per e-mail and
address (a stranger cannot lock the owner out) in a store shared by every
worker; ``X-Forwarded-For`` counts only from configured proxies; sign-up and
login do not tell whether an e-mail has an account.
"""

from __future__ import annotations

import os
import stat
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from catalog_api.options import ApiOptions
from core.settings import Settings
from tests.api.support import free_port, signup_and_login

from .conftest import client_for

PUBLISHED_JWT_SECRET = "dev-only-secret-change-me-please-0123456789"
PUBLISHED_CDN_KEY = "dev-only-cdn-key-change-me-please-0123456789"
PASSWORD = "correct horse 1"


def _login(client: TestClient, email: str, password: str = PASSWORD, **kwargs: Any) -> Any:
    return client.post("/v1/auth/token", data={"username": email, "password": password}, **kwargs)


# --- secrets ---------------------------------------------------------------------------------------------


def test_a_workspace_without_secrets_gets_random_private_ones(tmp_path: Path) -> None:
    first = Settings(home=tmp_path / "ws")
    again = Settings(home=tmp_path / "ws")
    other = Settings(home=tmp_path / "other")
    assert first.jwt_secret and len(first.jwt_secret) >= 32 and first.cdn_signing_key != first.jwt_secret
    assert (first.jwt_secret, first.cdn_signing_key) == (again.jwt_secret, again.cdn_signing_key)  # one per workspace
    assert other.jwt_secret != first.jwt_secret
    assert PUBLISHED_JWT_SECRET not in (first.jwt_secret, first.cdn_signing_key)
    mode = stat.S_IMODE(os.stat(tmp_path / "ws" / "secrets.json").st_mode)
    assert mode == 0o600, oct(mode)


def test_published_secrets_are_refused_and_production_needs_its_own(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="published"):
        Settings(home=tmp_path / "ws", jwt_secret=PUBLISHED_JWT_SECRET)
    with pytest.raises(ValueError, match="published"):
        Settings(home=tmp_path / "ws", cdn_signing_key=PUBLISHED_CDN_KEY)
    production = Settings(home=tmp_path / "prod", environment="production")
    with pytest.raises(ValueError, match="MARQUEE_JWT_SECRET"):
        production.check_production_secrets()
    assert not (tmp_path / "prod" / "secrets.json").exists()  # nothing generated outside development
    Settings(environment="production", jwt_secret="x" * 40, cdn_signing_key="y" * 40).check_production_secrets()


def test_a_token_forged_with_the_published_default_reads_nothing(api: TestClient) -> None:
    headers = signup_and_login(api, f"{uuid.uuid4().hex}@example.com")
    account_id = api.get("/v1/account", headers=headers).json()["account_id"]
    settings = api.app.state.marquee.settings  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    payload = {
        "sub": account_id, "jti": "forged", "typ": "access", "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
        "iat": int(now.timestamp()), "exp": int((now + timedelta(minutes=5)).timestamp()),
    }  # fmt: skip
    forged = jwt.encode(payload, PUBLISHED_JWT_SECRET, algorithm="HS256")
    assert api.get("/v1/account", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


# --- refresh families and logout -------------------------------------------------------------------------


def test_reusing_a_rotated_refresh_token_revokes_the_family(api: TestClient) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    signup_and_login(api, email)
    first = _login(api, email).json()
    second = api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    # The first refresh token is replayed (stolen copy): refused, and its whole family with it.
    replay = api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert api.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    # Another login (another family) is untouched.
    other = _login(api, email).json()
    assert api.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code == 200


def test_logout_without_a_body_revokes_the_refresh_token(api: TestClient) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    signup_and_login(api, email)
    pair = _login(api, email).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert api.post("/v1/auth/logout", headers=headers).status_code == 204
    assert api.get("/v1/account", headers=headers).status_code == 401
    assert api.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401


def test_access_tokens_of_a_revoked_family_are_refused_at_once_by_every_worker(
    make_app: Callable[..., Any],
) -> None:
    # Two workers (two apps on one database): what one revokes, the other refuses on its next request,
    # on the general routes and on the hot read routes alike (home and manifests read the profile and
    # the revocation in one statement).
    worker_a, worker_b = client_for(make_app()), client_for(make_app())
    email = f"{uuid.uuid4().hex}@example.com"
    signup_and_login(worker_a, email)
    first = _login(worker_a, email).json()
    second = worker_a.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    bearers = [{"Authorization": f"Bearer {pair['access_token']}"} for pair in (first, second)]
    profile_id = worker_b.post("/v1/profiles", json={"name": "P"}, headers=bearers[1]).json()["profile_id"]
    for headers in bearers:  # both access tokens of the family work in both workers (and are remembered there)
        for worker in (worker_a, worker_b):
            assert worker.get("/v1/account", headers=headers).status_code == 200
            assert worker.get(f"/v1/profiles/{profile_id}/home", headers=headers).status_code == 200
    # The first refresh token is replayed in worker B: the family is revoked, its access tokens with it.
    assert worker_b.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).status_code == 401
    for headers in bearers:
        for worker in (worker_a, worker_b):
            assert worker.get("/v1/account", headers=headers).status_code == 401
            assert worker.get(f"/v1/profiles/{profile_id}/home", headers=headers).status_code == 401
            assert worker.get(f"/v1/profiles/{profile_id}/history", headers=headers).status_code == 401
    # Another login of the same account is untouched.
    other = {"Authorization": f"Bearer {_login(worker_b, email).json()['access_token']}"}
    assert worker_a.get(f"/v1/profiles/{profile_id}/home", headers=other).status_code == 200


def test_logout_ends_every_access_token_of_the_login(api: TestClient) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    signup_and_login(api, email)
    first = _login(api, email).json()
    second = api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    old, new = ({"Authorization": f"Bearer {pair['access_token']}"} for pair in (first, second))
    assert api.get("/v1/account", headers=old).status_code == 200
    assert api.post("/v1/auth/logout", headers=new).status_code == 204
    refused = api.get("/v1/account", headers=old)  # the earlier access token of the same login, not sent at logout
    assert refused.status_code == 401 and "log in again" in refused.json()["detail"]


# --- login limits ----------------------------------------------------------------------------------------


def test_a_stranger_cannot_lock_the_owner_out(make_app: Callable[..., Any]) -> None:
    app = make_app(ApiOptions(login_limit=3))
    owner, stranger = client_for(app, "10.0.0.1"), client_for(app, "10.0.0.66")
    email = f"{uuid.uuid4().hex}@example.com"
    signup_and_login(owner, email)
    codes = [_login(stranger, email, "wrong guess").status_code for _ in range(6)]
    assert codes[:3] == [401] * 3 and set(codes[3:]) == {429}  # the stranger backs off...
    assert _login(owner, email).status_code == 200  # ...the owner, from her address, does not
    limited = _login(stranger, email)  # even the right password waits at the stranger's address
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(make_app: Callable[..., Any]) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    direct = client_for(make_app(ApiOptions(login_limit=2)), "127.0.0.1")
    signup_and_login(direct, email)
    # Not a configured proxy: rotating X-Forwarded-For does not give a fresh bucket.
    codes = [
        _login(direct, email, "wrong", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(4)
    ]
    assert codes == [401, 401, 429, 429]
    proxied_app = make_app(ApiOptions(login_limit=2), trusted_proxies="127.0.0.1/32")
    proxy = client_for(proxied_app, "127.0.0.1")
    signup_and_login(proxy, email.replace("@", "2@"))
    behind = [
        _login(proxy, email.replace("@", "2@"), "wrong", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
        for i in range(4)
    ]
    assert behind == [401] * 4  # each real client behind the trusted proxy has its own bucket


def test_login_limits_are_shared_by_workers_through_redis(make_app: Callable[..., Any], redis_url: str) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    options = ApiOptions(login_limit=3)
    worker_a = client_for(make_app(options, rate_limit_url=f"{redis_url}/0"))
    worker_b = client_for(make_app(options, rate_limit_url=f"{redis_url}/0"))
    signup_and_login(worker_a, email)
    codes = [_login(w, email, "wrong").status_code for w in (worker_a, worker_b, worker_a, worker_b)]
    assert codes == [401, 401, 401, 429]  # N workers do not allow N times the tries


def test_login_limits_fall_back_to_process_memory_when_redis_is_down(make_app: Callable[..., Any]) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    client = client_for(make_app(ApiOptions(login_limit=2), rate_limit_url=f"redis://127.0.0.1:{free_port()}/0"))
    signup_and_login(client, email)  # no 5xx while the store is unreachable
    codes = [_login(client, email, "wrong").status_code for _ in range(3)]
    assert codes == [401, 401, 429]  # still limited, per process
    assert client.app.state.marquee.login_guard.store.shared is False  # type: ignore[attr-defined]


# --- enumeration -----------------------------------------------------------------------------------------


def test_signup_and_login_do_not_reveal_which_emails_have_accounts(api: TestClient) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    signup_and_login(api, email)
    taken = api.post("/v1/auth/signup", json={"email": email, "password": "another long pw"})
    new = api.post("/v1/auth/signup", json={"email": f"new-{email}", "password": "another long pw"})
    # Byte for byte the same answer for a taken e-mail as for a new one (status, body, headers that vary).
    assert (taken.status_code, taken.content) == (new.status_code, new.content) == (201, new.content)
    assert (
        taken.headers.keys() == new.headers.keys() and taken.headers["content-length"] == new.headers["content-length"]
    )
    assert email not in taken.text and "exists" not in taken.text
    wrong = _login(api, email, "wrong password")
    unknown = _login(api, f"nobody-{email}", "wrong password")
    assert wrong.status_code == unknown.status_code == 401 and wrong.json()["detail"] == unknown.json()["detail"]


def test_signup_takes_as_long_for_a_taken_email_as_for_a_new_one(api: TestClient) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    signup_and_login(api, email)

    def timed(address: str) -> float:
        started = time.perf_counter()
        api.post("/v1/auth/signup", json={"email": address, "password": "another long pw"})
        return time.perf_counter() - started

    taken = statistics.median(timed(email) for _ in range(5))
    new = statistics.median(timed(f"{uuid.uuid4().hex}@example.com") for _ in range(5))
    # Both hash the password (Argon2, tens of ms); a taken e-mail used to answer before hashing.
    assert taken > 0.5 * new, (taken, new)
