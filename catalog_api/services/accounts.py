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
from core.errors import ConflictError

#: The one answer to a sign-up whose e-mail is taken: it names neither the e-mail nor the account.
SIGNUP_CONFLICT = "this e-mail cannot be used for a new account; log in, or reset the password"


def create_account(session: Session, request: SignupRequest) -> AccountRow:
    """Store a new account with an Argon2 password hash.

    The password is hashed before the e-mail is looked up, so a taken e-mail costs
    the same time as a new one (no enumeration by timing).

    Raises:
        ConflictError: the e-mail is already registered.
    """
    password_hash = hash_password(request.password)
    if session.scalar(select(AccountRow.account_id).where(AccountRow.email == request.email)):
        raise ConflictError(SIGNUP_CONFLICT)
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
    except IntegrityError:
        raise ConflictError(SIGNUP_CONFLICT) from None
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


def is_revoked(executor: Session | Connection, jti: str) -> bool:
    """Whether logout or refresh rotation revoked this token id.

    A Core statement, not ``Session.get``: it runs on every authenticated request, and the
    hot read routes call it on a bare connection (``api.deps.load_caller_profile``).
    """
    return executor.execute(_REVOKED, {"jti": jti}).first() is not None


def purge_expired_revocations(session: Session, now: datetime | None = None) -> int:
    """Drop revocations of tokens that have expired anyway; returns rows removed."""
    result = session.execute(delete(RevokedTokenRow).where(RevokedTokenRow.expires_at < (now or datetime.now(UTC))))
    return int(getattr(result, "rowcount", 0) or 0)
