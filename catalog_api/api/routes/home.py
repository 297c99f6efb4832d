"""``/v1/profiles/{profile_id}/home``: the home rows."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from catalog_api.api.deps import StateDep, TokenDep, verify_access
from catalog_api.db.tables import AccountRow, ProfileRow
from catalog_api.schemas.home import HomeResponse
from catalog_api.services import profiles
from catalog_api.services.accounts import get_account
from catalog_api.services.events import LatestPosition, latest_positions
from catalog_api.services.home import build_home
from catalog_api.state import AppState

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/profiles/{profile_id}", tags=["home"])


def _load(state: AppState, token: str | None, profile_id: str) -> tuple[AccountRow, ProfileRow, list[LatestPosition]]:
    # One short session for auth and the profile: nothing is held while the model server is awaited.
    session: Session = state.sessions()
    try:
        claims = verify_access(state, session, token)
        account = get_account(session, claims.account_id)
        profile = profiles.get_owned_profile(session, account.account_id, profile_id)
        return account, profile, latest_positions(session, profile.profile_id)
    finally:
        session.close()


@router.get("/home", response_model=HomeResponse)
async def home(
    profile_id: str,
    request: Request,
    state: StateDep,
    token: TokenDep,
    device: Literal["tv", "web", "mobile"] = "web",
) -> HomeResponse:
    """Rows for the profile: personalized when the model server answers in time, else popularity."""
    account, profile, positions = await run_in_threadpool(_load, state, token, profile_id)
    request_id = str(request.scope.get("request_id", ""))
    response = await build_home(state, profile, positions, account.plan, device, request_id)
    state.metrics.home_pages.labels(response.source, response.fallback_reason or "").inc()
    return response
