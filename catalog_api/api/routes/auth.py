"""``/v1/auth``: sign-up, OAuth2 password login, refresh with rotation, logout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from catalog_api.api.deps import CurrentClaims, SessionDep, StateDep
from catalog_api.errors import UnauthorizedError
from catalog_api.schemas.auth import AccountPublic, LogoutRequest, RefreshRequest, SignupRequest, TokenPair
from catalog_api.services import accounts
from catalog_api.state import AppState

router = APIRouter(prefix="/v1/auth", tags=["auth"])


def _pair(state: AppState, account_id: str) -> TokenPair:
    access, _ = state.tokens.issue(account_id, "access")
    refresh, _ = state.tokens.issue(account_id, "refresh")
    return TokenPair(
        access_token=access, refresh_token=refresh, expires_in=int(state.tokens.access_ttl.total_seconds())
    )


@router.post("/signup", status_code=status.HTTP_201_CREATED, response_model=AccountPublic)
def signup(body: SignupRequest, session: SessionDep, state: StateDep, request: Request) -> AccountPublic:
    """Create an account (409 if the e-mail is taken)."""
    state.client_limiter.hit(request.client.host if request.client else "-")
    account = accounts.create_account(session, body)
    session.commit()
    return AccountPublic.model_validate(account)


@router.post("/token", response_model=TokenPair)
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep, state: StateDep, request: Request
) -> TokenPair:
    """OAuth2 password flow (``username`` is the e-mail); rate-limited per e-mail and per client address."""
    email_key = f"email:{form.username.strip().lower()}"
    state.login_limiter.hit(email_key)
    state.client_limiter.hit(request.client.host if request.client else "-")
    account = accounts.authenticate(session, form.username, form.password)
    state.login_limiter.reset(email_key)
    return _pair(state, account.account_id)


@router.post("/refresh", response_model=TokenPair)
def refresh(body: RefreshRequest, session: SessionDep, state: StateDep) -> TokenPair:
    """Exchange a refresh token for a new pair; the old refresh token is revoked (rotation)."""
    claims = state.tokens.verify(body.refresh_token, "refresh")
    if accounts.is_revoked(session, claims.jti):
        raise UnauthorizedError("refresh token already used or revoked; log in again at /v1/auth/token")
    accounts.get_account(session, claims.account_id)
    state.account_limiter.hit(claims.account_id)
    accounts.revoke(session, claims)
    session.commit()
    return _pair(state, claims.account_id)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(claims: CurrentClaims, session: SessionDep, state: StateDep, body: LogoutRequest | None = None) -> None:
    """Revoke the access token, and the refresh token if given."""
    accounts.revoke(session, claims)
    if body is not None and body.refresh_token:
        refresh_claims = state.tokens.verify(body.refresh_token, "refresh")
        if refresh_claims.account_id != claims.account_id:
            raise UnauthorizedError("the refresh token belongs to another account")
        accounts.revoke(session, refresh_claims)
    session.commit()
