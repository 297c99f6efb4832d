"""The caller's profile on the hot read routes (home rows, manifests), read in one round trip.

The general dependencies (``CurrentAccount`` then ``OwnedProfile``) cost four ORM
lookups and four thread-pool hops per request: revocation, account, profile,
then the route's own query. That was a third of a home page's CPU. The routes
a client calls on every screen read the profile and its account's plan here
with one Core statement instead, with the same rule: a profile of another
account (or of none) is a 404 exactly like a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, exists, select

from catalog_api.db.tables import AccountRow, ProfileRow, RevokedTokenRow
from catalog_api.errors import UnauthorizedError
from catalog_api.security.tokens import TokenClaims
from catalog_api.services.accounts import revocation_keys, token_revoked
from core.errors import NotFoundError

_PROFILE = (
    select(
        ProfileRow.profile_id,
        ProfileRow.account_id,
        ProfileRow.name,
        ProfileRow.language,
        ProfileRow.maturity_level,
        ProfileRow.is_kids,
        ProfileRow.country,
        AccountRow.plan,
        exists().where(RevokedTokenRow.jti.in_([bindparam("jti"), bindparam("family")])).label("revoked"),
    )
    .join(AccountRow, AccountRow.account_id == ProfileRow.account_id)
    .where(ProfileRow.profile_id == bindparam("profile_id"), ProfileRow.account_id == bindparam("account_id"))
)


REVOKED_MESSAGE = (
    "token revoked (its login was ended: logout, or a refresh token reused); log in again at /v1/auth/token"
)


@dataclass(frozen=True)
class ProfileContext:
    """A profile of the caller's account, with the account's plan (manifests and prefetch depend on it)."""

    profile_id: str
    account_id: str
    name: str
    language: str
    maturity_level: int
    is_kids: bool
    country: str
    plan: str


def load_profile_context(connection: Connection, claims: TokenClaims, profile_id: str) -> ProfileContext:
    """The profile ``profile_id`` if the account of ``claims`` owns it and the token is not revoked.

    The revocation check (the token or its whole login, ``accounts.token_revoked``) rides
    on the same statement (one round trip instead of two).

    Raises:
        UnauthorizedError: the token was revoked (401, checked before ownership).
        NotFoundError: the account has no such profile (404).
    """
    row = connection.execute(
        _PROFILE, {"profile_id": profile_id, "account_id": claims.account_id, **revocation_keys(claims)}
    ).first()
    if row is not None and row.revoked:
        raise UnauthorizedError(REVOKED_MESSAGE)
    if row is None:
        if token_revoked(connection, claims):
            raise UnauthorizedError(REVOKED_MESSAGE)
        raise NotFoundError(f"no profile {profile_id!r} in this account; list yours at GET /v1/profiles")
    return ProfileContext(
        profile_id=row.profile_id,
        account_id=row.account_id,
        name=row.name,
        language=row.language,
        maturity_level=int(row.maturity_level),
        is_kids=bool(row.is_kids),
        country=row.country,
        plan=row.plan,
    )
