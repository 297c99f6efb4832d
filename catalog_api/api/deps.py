"""Dependencies of the routes, as ``Annotated`` aliases (``SessionDep``, ``CurrentAccount``...)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Connection
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from catalog_api.db.tables import AccountRow, ProfileRow
from catalog_api.errors import UnauthorizedError
from catalog_api.security.tokens import TokenClaims
from catalog_api.services import accounts, profiles
from catalog_api.services.profile_context import REVOKED_MESSAGE, ProfileContext, load_profile_context
from catalog_api.state import AppState
from core.errors import ForbiddenError, NotFoundError

T = TypeVar("T")

MISSING_TOKEN_MESSAGE = "missing bearer token; get one at POST /v1/auth/token"

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


async def get_state(request: Request) -> AppState:
    """The process state ``create_app`` attached to the application."""
    state: AppState = request.app.state.marquee
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    """One session per request; routes that write commit explicitly before answering."""
    session = state.sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


def verify_access(state: AppState, session: Session | Connection, token: str | None) -> TokenClaims:
    """The verified, unrevoked access token, counted against the account's rate limit."""
    if not token:
        raise UnauthorizedError(MISSING_TOKEN_MESSAGE)
    claims = state.tokens.verify(token, "access")
    if accounts.token_revoked(session, claims):
        raise UnauthorizedError(REVOKED_MESSAGE)
    state.account_limiter.hit(claims.account_id)
    return claims


def load_caller_profile(
    state: AppState, token: str | None, profile_id: str, read: Callable[[Connection, ProfileContext], T]
) -> tuple[ProfileContext, T]:
    """The caller's profile and what ``read`` reads for it, on one connection."""
    if not token:
        raise UnauthorizedError(MISSING_TOKEN_MESSAGE)
    claims = state.tokens.verify(token, "access")
    with state.engine.connect() as connection:
        # Revocation is checked by the profile statement itself (before ownership: a 401 wins over a 404).
        try:
            context = load_profile_context(connection, claims, profile_id)
        except NotFoundError:
            state.account_limiter.hit(claims.account_id)  # a 404 counts against the limit like any request
            raise
        state.account_limiter.hit(claims.account_id)
        return context, read(connection, context)


async def read_caller_profile(
    state: AppState, token: str | None, profile_id: str, read: Callable[[Connection, ProfileContext], T]
) -> tuple[ProfileContext, T]:
    """``load_caller_profile`` for the hot read routes (home rows, manifests).

    The same checks as ``CurrentAccount`` and ``OwnedProfile`` (token, revocation, rate
    limit, ownership) with two Core statements on one connection, where the general
    dependencies need four ORM lookups and as many thread-pool hops. On SQLite the
    reads run on the event loop: they are local page reads of a fraction of a
    millisecond that never wait for writers (WAL), and a thread-pool hop cost more
    than the reads themselves (GIL hand-offs under load). PostgreSQL reads wait on
    the network, so they go to the thread pool.
    """
    if state.engine.dialect.name == "sqlite":
        return load_caller_profile(state, token, profile_id, read)
    return await run_in_threadpool(load_caller_profile, state, token, profile_id, read)


def get_claims(state: StateDep, session: SessionDep, token: TokenDep) -> TokenClaims:
    """The verified, unrevoked access token of the request."""
    return verify_access(state, session, token)


CurrentClaims = Annotated[TokenClaims, Depends(get_claims)]


def get_current_account(session: SessionDep, claims: CurrentClaims) -> AccountRow:
    """The account of the access token."""
    return accounts.get_account(session, claims.account_id)


CurrentAccount = Annotated[AccountRow, Depends(get_current_account)]


def get_path_profile(profile_id: str, session: SessionDep, account: CurrentAccount) -> ProfileRow:
    """The ``{profile_id}`` of the path, if it is the caller's (else 404)."""
    return profiles.get_owned_profile(session, account.account_id, profile_id)


OwnedProfile = Annotated[ProfileRow, Depends(get_path_profile)]


def require_admin(state: StateDep, session: SessionDep, token: TokenDep) -> None:
    """Admin routes: the configured admin token, or an access token of an admin account."""
    if not token:
        raise UnauthorizedError("missing bearer token")
    admin_token = state.options.admin_token
    if admin_token and hmac.compare_digest(token, admin_token):
        return
    claims = state.tokens.verify(token, "access")
    if accounts.token_revoked(session, claims) or not accounts.get_account(session, claims.account_id).is_admin:
        raise ForbiddenError("experiment administration needs an admin account or the admin token")


AdminDep = Depends(require_admin)
