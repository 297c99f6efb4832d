"""``/v1/playback/{title_id}/manifest``: HLS or DASH with signed URLs and the resume position."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from catalog_api.api.deps import CurrentAccount, SessionDep, StateDep
from catalog_api.playback.service import Viewer
from catalog_api.services import profiles
from catalog_api.services.events import resume_position

router = APIRouter(prefix="/v1/playback", tags=["playback"])


@router.get(
    "/{title_id}/manifest",
    response_class=Response,
    responses={
        200: {"content": {"application/vnd.apple.mpegurl": {}, "application/dash+xml": {}}},
        403: {"description": "above the profile's maturity level, or not licensed in its country"},
    },
)
def manifest(
    title_id: str,
    profile_id: str,
    state: StateDep,
    session: SessionDep,
    account: CurrentAccount,
    format: Literal["hls", "dash"] = "hls",
    device: Literal["tv", "web", "mobile"] = "web",
) -> Response:
    """A manifest for a movie, a series (its first episode) or an episode."""
    profile = profiles.get_owned_profile(session, account.account_id, profile_id)
    viewer = Viewer(profile.profile_id, profile.maturity_level, profile.country, profile.language, account.plan)
    snapshot = state.catalog.snapshot
    _, content_id, _ = state.playback.resolve(snapshot, title_id)
    resume = resume_position(session, profile.profile_id, content_id)
    built = state.playback.manifest(snapshot, title_id, viewer, format, device, resume)
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
