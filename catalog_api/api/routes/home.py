"""``/v1/profiles/{profile_id}/home``: the home rows."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from catalog_api.api.deps import StateDep, TokenDep, read_caller_profile
from catalog_api.schemas.home import HomeResponse
from catalog_api.services.events import latest_positions
from catalog_api.services.exposures import page_id
from catalog_api.services.home import build_home

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/profiles/{profile_id}", tags=["home"])


@router.get("/home", response_model=HomeResponse)
async def home(
    profile_id: str,
    request: Request,
    state: StateDep,
    token: TokenDep,
    device: Literal["tv", "web", "mobile"] = "web",
) -> Response:
    """Rows for the profile: personalized when the model server answers in time, else popularity."""
    # One short connection for auth, the profile and its history: nothing is held while the model server is awaited.
    profile, positions = await read_caller_profile(
        state, token, profile_id, lambda connection, p: latest_positions(connection, p.profile_id)
    )
    request_id = page_id(str(request.scope.get("request_id", "")), bool(request.scope.get("request_id_from_client")))
    page = await build_home(state, profile, positions, device, request_id)
    state.metrics.home_pages.labels(page.source, page.fallback_reason or "").inc()
    # Assembled from cached fragments (``services.home_json``); the schema stays ``HomeResponse``.
    return Response(page.to_json(), media_type="application/json")
