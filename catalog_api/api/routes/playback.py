"""``/v1/playback/{title_id}/manifest``: HLS or DASH with signed URLs and the resume position."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from sqlalchemy import Connection

from catalog_api.api.deps import StateDep, TokenDep, read_caller_profile
from catalog_api.playback.service import Viewer
from catalog_api.services.events import resume_position
from catalog_api.services.profile_context import ProfileContext

router = APIRouter(prefix="/v1/playback", tags=["playback"])


@router.get(
    "/{title_id}/manifest",
    response_class=Response,
    responses={
        200: {"content": {"application/vnd.apple.mpegurl": {}, "application/dash+xml": {}}},
        403: {"description": "above the profile's maturity level, or not licensed in its country"},
    },
)
async def manifest(
    title_id: str,
    profile_id: str,
    state: StateDep,
    token: TokenDep,
    format: Literal["hls", "dash"] = "hls",
    device: Literal["tv", "web", "mobile"] = "web",
) -> Response:
    """A manifest for a movie, a series (its first episode) or an episode."""
    snapshot = state.catalog.snapshot

    def resume(connection: Connection, profile: ProfileContext) -> int:
        _, content_id, _ = state.playback.resolve(snapshot, title_id)  # 404 for an unknown title, after auth
        return resume_position(connection, profile.profile_id, content_id)

    profile, resume_s = await read_caller_profile(state, token, profile_id, resume)
    viewer = Viewer(profile.profile_id, profile.maturity_level, profile.country, profile.language, profile.plan)
    built = state.playback.manifest(snapshot, title_id, viewer, format, device, resume_s)
    return Response(
        built.body,
        media_type=built.content_type,
        headers={
            "X-Content-Id": built.content_id,
            "X-Resume-Position": str(built.resume_s),
            "X-Cdn-Edge": built.edge,
            "Cache-Control": "private, no-store",
        },
    )
