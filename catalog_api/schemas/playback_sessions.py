"""Schemas of players' quality-of-experience reports (``/v1/profiles/{id}/playback-sessions``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from catalog_api.schemas.common import PublicModel, RequestBody

#: Longer than any title: a report claiming more played time is refused.
MAX_SESSION_S = 24 * 3600


class PlaybackReportCreate(RequestBody):
    """One report of a playback session: its totals so far.

    A player sends several per session (first frame, every 30 s, the end);
    ``report_seq`` numbers them, so a retried report is stored once.
    """

    session_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    report_seq: int = Field(ge=0, le=100_000, description="the report's number within the session")
    title_id: str = Field(min_length=1, max_length=128, description="the movie or episode played")
    format: Literal["hls", "dash"]
    device: str = Field(default="web", max_length=32)
    edge: str | None = Field(default=None, max_length=64, description="the CDN edge the manifest named")
    startup_ms: int | None = Field(default=None, ge=0, le=600_000, description="Play to first frame; null: none yet")
    played_s: float = Field(ge=0, le=MAX_SESSION_S)
    rebuffer_count: int = Field(ge=0, le=100_000)
    rebuffer_s: float = Field(ge=0, le=MAX_SESSION_S)
    bitrate_switches: int = Field(ge=0, le=100_000)
    avg_bitrate_kbps: int = Field(ge=0, le=200_000, description="time-weighted over the renditions shown")
    fatal_error: str | None = Field(default=None, max_length=64, description="the error that ended playback")
    ended: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> PlaybackReportCreate:
        if self.rebuffer_count == 0 and self.rebuffer_s > 0:
            raise ValueError("rebuffer_s > 0 needs rebuffer_count > 0")
        return self


class PlaybackReportAccepted(PublicModel):
    """Whether the report was new (``created``) or a retry of one already stored."""

    session_id: str
    report_seq: int
    created: bool


class PlaybackSession(PublicModel):
    """A session as its latest report describes it."""

    session_id: str
    title_id: str
    format: str
    device: str
    edge: str | None
    started: datetime
    updated: datetime
    startup_ms: int | None
    played_s: float
    rebuffer_count: int
    rebuffer_s: float
    rebuffer_ratio: float
    bitrate_switches: int
    avg_bitrate_kbps: int
    fatal_error: str | None
    ended: bool


class PlaybackSessionPage(PublicModel):
    """A profile's latest playback sessions, most recent first."""

    items: list[PlaybackSession]
