"""Accounts: sign-up, credentials, token revocation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog_api.db.tables import AccountRow, RevokedTokenRow
from catalog_api.errors import UnauthorizedError
from catalog_api.schemas.auth import SignupRequest
from catalog_api.security.passwords import hash_password, verify_password
from catalog_api.security.tokens import TokenClaims


def create_account(session: Session, request: SignupRequest) -> AccountRow | None:
    """Store a new account with an Argon2 password hash; None when the e-mail is already registered.

    The caller answers both cases the same way (no account enumeration through sign-up,
    OWASP API2): the route does not say whether an account was created. The password is
    hashed before the e-mail is looked up, so a taken e-mail costs the same time as a new one.
    """
    password_hash = hash_password(request.password)
    if session.scalar(select(AccountRow.account_id).where(AccountRow.email == request.email)):
        return None
    account = AccountRow(
        account_id=uuid.uuid4().hex,
        email=request.email,
        password_hash=password_hash,
        country=request.country,
        plan=request.plan,
        is_admin=False,
        created_at=datetime.now(UTC),
    )
    session.add(account)
    try:
        session.flush()
    except IntegrityError:  # registered meanwhile by a concurrent sign-up
        session.rollback()
        return None
    return account


def authenticate(session: Session, email: str, password: str) -> AccountRow:
    """The account whose credentials these are; one message for every failure (no user enumeration)."""
    account = session.scalar(select(AccountRow).where(AccountRow.email == email.strip().lower()))
    if not verify_password(password, account.password_hash if account else None) or account is None:
        raise UnauthorizedError("wrong e-mail or password")
    return account


def get_account(session: Session, account_id: str) -> AccountRow:
    """The account a verified token names; gone accounts are unauthorized, not 404."""
    account = session.get(AccountRow, account_id)
    if account is None:
        raise UnauthorizedError("the account of this token no longer exists; sign up or log in again")
    return account


def revoke(session: Session, claims: TokenClaims) -> None:
    """Put a token on the revocation list until its natural expiry (idempotent)."""
    if session.get(RevokedTokenRow, claims.jti) is None:
        session.add(RevokedTokenRow(jti=claims.jti, account_id=claims.account_id, expires_at=claims.expires_at))
        session.flush()


def family_marker(family: str) -> str:
    """The ``revoked_tokens.jti`` that stands for a whole revoked token family."""
    return f"fam:{family}"


def revoke_family(session: Session, claims: TokenClaims, refresh_ttl: timedelta) -> None:
    """Revoke every refresh token descended from the login of ``claims`` (logout, detected reuse)."""
    marker = family_marker(claims.family or claims.jti)
    if session.get(RevokedTokenRow, marker) is None:
        expires = datetime.now(UTC) + refresh_ttl  # outlives every refresh token of the family
        session.add(RevokedTokenRow(jti=marker, account_id=claims.account_id, expires_at=expires))
        session.flush()


_REVOKED = select(RevokedTokenRow.jti).where(RevokedTokenRow.jti == bindparam("jti"))
_TOKEN_REVOKED = select(RevokedTokenRow.jti).where(RevokedTokenRow.jti.in_([bindparam("jti"), bindparam("family")]))


def is_revoked(executor: Session | Connection, jti: str) -> bool:
    """Whether this exact id (a token's ``jti`` or a ``family_marker``) is on the revocation list."""
    return executor.execute(_REVOKED, {"jti": jti}).first() is not None


def token_revoked(executor: Session | Connection, claims: TokenClaims) -> bool:
    """Whether this token, or the login (family) it descends from, was revoked.

    Checked on every authenticated request, in the database, so a logout or a detected
    refresh-token reuse ends the family's access tokens at once in every worker and
    replica (not at their expiry, up to 15 minutes later). One primary-key lookup of
    two keys, as a Core statement: the hot read routes run it on a bare connection
    (``api.deps.load_caller_profile``), where it rides on the profile statement.
    """
    return executor.execute(_TOKEN_REVOKED, revocation_keys(claims)).first() is not None


def revocation_keys(claims: TokenClaims) -> dict[str, str]:
    """The ``revoked_tokens.jti`` values that would revoke ``claims``: its own id and its family's marker."""
    return {"jti": claims.jti, "family": family_marker(claims.family or claims.jti)}


def purge_expired_revocations(session: Session, now: datetime | None = None) -> int:
    """Drop revocations of tokens that have expired anyway; returns rows removed."""
    result = session.execute(delete(RevokedTokenRow).where(RevokedTokenRow.expires_at < (now or datetime.now(UTC))))
    return int(getattr(result, "rowcount", 0) or 0)
