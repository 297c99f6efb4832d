"""Watch events, history and Continue Watching of one profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from catalog_api.api.deps import OwnedProfile, SessionDep, StateDep
from catalog_api.schemas.events import ContinueItem, HistoryItem, HistoryPage, WatchEventAccepted, WatchEventCreate
from catalog_api.security.maturity import history_visible
from catalog_api.services.events import continue_watching, event_row, insert_event, latest_positions
from core.bus import EventKind

router = APIRouter(prefix="/v1/profiles/{profile_id}", tags=["watching"])


@router.post(
    "/events",
    status_code=status.HTTP_201_CREATED,
    response_model=WatchEventAccepted,
    responses={200: {"model": WatchEventAccepted, "description": "a retry of an event already stored"}},
)
def post_event(
    body: WatchEventCreate, profile: OwnedProfile, session: SessionDep, state: StateDep, response: Response
) -> WatchEventAccepted:
    """Store a heartbeat durably (committed before the answer); a retried ``event_id`` answers 200.

    With the event bus, a new event is published and acked by the stream between the insert and the
    commit: a refusal (503) rolls the insert back, so nothing is half-accepted, and the client's retry
    of the same ``event_id`` starts over.
    """
    values = event_row(profile, body, state.catalog.snapshot)
    created = insert_event(session, values)
    if created and state.bus is not None:
        state.bus.publish(EventKind.WATCH, body.event_id, values)
    session.commit()
    if not created:
        response.status_code = status.HTTP_200_OK
    return WatchEventAccepted(event_id=body.event_id, created=created)


@router.get("/history", response_model=HistoryPage)
def history(
    profile: OwnedProfile, session: SessionDep, state: StateDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> HistoryPage:
    """The latest position of each title or episode watched, most recent first.

    Judged by the profile's maturity level now: a profile switched to kids no longer lists the
    mature titles it watched before, and titles gone from the catalog are listed only to adults.
    """
    snapshot = state.catalog.snapshot
    items = []
    for position in latest_positions(session, profile.profile_id, limit):
        title = snapshot.resolve(position.title_id)
        if not history_visible(title, profile.maturity_level):
            continue
        episode = snapshot.episodes.get(position.title_id)
        items.append(
            HistoryItem(
                title_id=position.title_id,
                series_id=episode.series_id if episode else None,
                title=title.title if title else position.title_id,
                position_s=position.position_s,
                duration_s=position.duration_s,
                progress=round(position.progress, 4),
                last_watched=position.ts,
            )
        )
    return HistoryPage(items=items)


@router.get("/continue-watching", response_model=list[ContinueItem])
def continue_list(profile: OwnedProfile, session: SessionDep, state: StateDep) -> list[ContinueItem]:
    """Titles in progress and next episodes, filtered like every other surface."""
    snapshot = state.catalog.snapshot
    items = []
    for entry in continue_watching(latest_positions(session, profile.profile_id), snapshot):
        title = snapshot.resolve(entry.title_id)
        if title is None or not title.visible_to(profile.maturity_level, profile.country):
            continue
        items.append(
            ContinueItem(
                title_id=entry.title_id,
                series_id=entry.series_id,
                title=title.title,
                position_s=entry.position_s,
                duration_s=entry.duration_s,
                reason=entry.reason,
            )
        )
    return items
