"""Schemas of watch events, history and Continue Watching."""

from __future__ import annotations

from pydantic import Field, model_validator

from catalog_api.schemas.common import INT32_MAX, EventTime, PublicModel, RequestBody, SafeStr, UtcDateTime


class WatchEventCreate(RequestBody):
    """A progress heartbeat. ``event_id`` makes retries idempotent; ``title_id`` is the episode id for series."""

    event_id: SafeStr = Field(min_length=1, max_length=128, description="client-made unique id; a retry reuses it")
    title_id: SafeStr = Field(min_length=1, max_length=128)
    position_s: int = Field(ge=0, le=INT32_MAX)
    duration_s: int = Field(gt=0, le=INT32_MAX)
    ts: EventTime | None = Field(
        default=None,
        description="when the client saw this position (UTC if no offset); from 2000-01-01 to at most "
        "10 minutes ahead of the server clock; default now",
    )
    device: SafeStr = Field(default="unknown", max_length=32)

    @model_validator(mode="after")
    def _position_within(self) -> WatchEventCreate:
        if self.position_s > self.duration_s:
            raise ValueError(f"position_s ({self.position_s}) may not exceed duration_s ({self.duration_s})")
        return self


class WatchEventAccepted(PublicModel):
    """Whether the event was new (``created``) or a retry of one already stored."""

    event_id: str
    created: bool


class HistoryItem(PublicModel):
    """The latest position of one title (or episode) a profile watched."""

    title_id: str
    series_id: str | None
    title: str
    position_s: int
    duration_s: int
    progress: float
    last_watched: UtcDateTime


class HistoryPage(PublicModel):
    """A profile's history, most recent first."""

    items: list[HistoryItem]


class ContinueItem(PublicModel):
    """A title to resume, or the next episode of a series."""

    title_id: str
    series_id: str | None
    title: str
    position_s: int
    duration_s: int
    reason: str
