"""``/v1/profiles/{profile_id}/home``: the home rows."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from catalog_api.api.deps import CurrentClaims, StateDep
from catalog_api.db.tables import AccountRow, ProfileRow
from catalog_api.schemas.home import HomeResponse
from catalog_api.security.tokens import TokenClaims
from catalog_api.services import profiles
from catalog_api.services.accounts import get_account
from catalog_api.services.home import build_home
from catalog_api.state import AppState

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/profiles/{profile_id}", tags=["home"])


def _load(state: AppState, claims: TokenClaims, profile_id: str) -> tuple[AccountRow, ProfileRow]:
    session: Session = state.sessions()
    try:
        account = get_account(session, claims.account_id)
        return account, profiles.get_owned_profile(session, account.account_id, profile_id)
    finally:
        session.close()


@router.get("/home", response_model=HomeResponse)
async def home(
    profile_id: str,
    request: Request,
    state: StateDep,
    claims: CurrentClaims,
    device: Literal["tv", "web", "mobile"] = "web",
) -> HomeResponse:
    """Rows for the profile: personalized when the model server answers in time, else popularity."""
    account, profile = await run_in_threadpool(_load, state, claims, profile_id)
    response = await build_home(state, profile, account.plan, device, str(request.scope.get("request_id", "")))
    state.metrics.home_pages.labels(response.source, response.fallback_reason or "").inc()
    return response
