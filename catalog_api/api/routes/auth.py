"""``/v1/auth``: sign-up, OAuth2 password login, refresh with rotation and families, logout."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from catalog_api.api.deps import CurrentClaims, SessionDep, StateDep
from catalog_api.errors import UnauthorizedError
from catalog_api.schemas.auth import LogoutRequest, RefreshRequest, SignupAccepted, SignupRequest, TokenPair
from catalog_api.schemas.common import text_problem
from catalog_api.security.proxies import client_address
from catalog_api.services import accounts
from catalog_api.state import AppState
from core.errors import InvalidInputError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/auth", tags=["auth"])


def _pair(state: AppState, account_id: str, family: str | None = None) -> TokenPair:
    refresh, claims = state.tokens.issue(account_id, "refresh", family=family)
    access, _ = state.tokens.issue(account_id, "access", family=claims.family)
    return TokenPair(
        access_token=access, refresh_token=refresh, expires_in=int(state.tokens.access_ttl.total_seconds())
    )


#: The answer to every valid sign-up: it does not say whether the e-mail already had an account.
SIGNUP_ACCEPTED = SignupAccepted(
    detail="sign-up received: log in at POST /v1/auth/token with this e-mail and password "
    "(if the e-mail already had an account, log in with its password)"
)


@router.post("/signup", status_code=status.HTTP_201_CREATED, response_model=SignupAccepted)
def signup(body: SignupRequest, session: SessionDep, state: StateDep, request: Request) -> SignupAccepted:
    """Create an account; the same 201 and body whether or not the e-mail was already registered.

    A different answer for a taken e-mail (it used to be a 409) tells anyone which e-mails
    have accounts (OWASP API2, account enumeration); the time taken is the same too (the
    password is hashed either way). The account's details are at ``GET /v1/account`` after login.
    """
    state.client_limiter.hit(client_address(request, state.trusted_proxies))
    if accounts.create_account(session, body) is None:
        logger.info("sign-up for an e-mail that already has an account (answered like any other)")
    session.commit()
    return SIGNUP_ACCEPTED


@router.post("/token", response_model=TokenPair)
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep, state: StateDep, request: Request
) -> TokenPair:
    """OAuth2 password flow (``username`` is the e-mail).

    Limited per client address (all attempts) and, for failures, per e-mail and address with a
    backoff: someone else guessing at an account cannot lock its owner out.
    """
    for field, value in (("username", form.username), ("password", form.password)):
        problem = text_problem(value)
        if problem or len(value) > 1024:
            raise InvalidInputError(f"{field} {problem or 'is longer than 1024 characters'}")
    address = client_address(request, state.trusted_proxies)
    state.client_limiter.hit(address)
    state.login_guard.check(form.username, address)
    try:
        account = accounts.authenticate(session, form.username, form.password)
    except UnauthorizedError:
        state.login_guard.failed(form.username, address)
        raise
    state.login_guard.succeeded(form.username, address)
    return _pair(state, account.account_id)


@router.post("/refresh", response_model=TokenPair)
def refresh(body: RefreshRequest, session: SessionDep, state: StateDep) -> TokenPair:
    """Exchange a refresh token for a new pair of the same family; the old refresh token is revoked.

    A refresh token used a second time was copied: the whole family (every refresh token
    of that login) is revoked, so neither the thief nor the owner can go on with it.
    """
    claims = state.tokens.verify(body.refresh_token, "refresh")
    if accounts.is_revoked(session, accounts.family_marker(claims.family)):
        raise UnauthorizedError("this login was ended (logout or token reuse); log in again at /v1/auth/token")
    if accounts.is_revoked(session, claims.jti):
        accounts.revoke_family(session, claims, state.tokens.refresh_ttl)
        session.commit()
        raise UnauthorizedError("refresh token already used; this login is revoked, log in again at /v1/auth/token")
    accounts.get_account(session, claims.account_id)
    state.account_limiter.hit(claims.account_id)
    accounts.revoke(session, claims)
    session.commit()
    return _pair(state, claims.account_id, family=claims.family)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(claims: CurrentClaims, session: SessionDep, state: StateDep, body: LogoutRequest | None = None) -> None:
    """Revoke the access token and every refresh token of its login (the refresh token need not be sent)."""
    accounts.revoke(session, claims)
    accounts.revoke_family(session, claims, state.tokens.refresh_ttl)
    if body is not None and body.refresh_token:
        refresh_claims = state.tokens.verify(body.refresh_token, "refresh")
        if refresh_claims.account_id != claims.account_id:
            raise UnauthorizedError("the refresh token belongs to another account")
        accounts.revoke(session, refresh_claims)
        accounts.revoke_family(session, refresh_claims, state.tokens.refresh_ttl)
    session.commit()
