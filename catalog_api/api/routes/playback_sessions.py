"""``/v1/profiles/{id}/playback-sessions``: the player's quality-of-experience beacons."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from catalog_api.api.deps import OwnedProfile, SessionDep, StateDep
from catalog_api.schemas.playback_sessions import PlaybackReportAccepted, PlaybackReportCreate, PlaybackSessionPage
from catalog_api.services.playback_sessions import insert_report, recent_sessions, report_row
from core.bus import EventKind

router = APIRouter(prefix="/v1/profiles/{profile_id}", tags=["watching"])


@router.post(
    "/playback-sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=PlaybackReportAccepted,
    responses={200: {"model": PlaybackReportAccepted, "description": "a retry of a report already stored"}},
)
def post_playback_report(
    body: PlaybackReportCreate, profile: OwnedProfile, session: SessionDep, state: StateDep, response: Response
) -> PlaybackReportAccepted:
    """Store a session's QoE totals so far (startup, rebuffers, switches, bitrate, fatal error).

    With the event bus, a new report is acked by the stream before the commit (503 when it cannot be).
    """
    values = report_row(session, profile, body, state.catalog.snapshot)
    seq = insert_report(session, values)
    created = seq is not None
    if seq is not None and state.bus is not None:
        # Acked by the stream before the commit, like a watch event (``events.post_event``).
        state.bus.publish(EventKind.PLAYBACK, f"{body.session_id}/{body.report_seq}", {**values, "seq": seq})
    session.commit()
    if not created:
        response.status_code = status.HTTP_200_OK
    return PlaybackReportAccepted(session_id=body.session_id, report_seq=body.report_seq, created=created)


@router.get("/playback-sessions", response_model=PlaybackSessionPage)
def list_playback_sessions(
    profile: OwnedProfile, session: SessionDep, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> PlaybackSessionPage:
    """The profile's latest sessions, most recent first, as their latest reports describe them."""
    return PlaybackSessionPage(items=recent_sessions(session, profile.profile_id, limit))
