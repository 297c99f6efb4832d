"""The domain schema: titles, series, accounts, profiles, watch events, exposures.

These pydantic models are the single description of Marquee's facts. The lake's
arrow schemas (``core.tables``) and the API's public schemas are derived from or
checked against them.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum

from pydantic import BaseModel, ConfigDict, Field


class TitleType(StrEnum):
    """A title is a movie or a series; a series' episodes are titles of their own in watch events."""

    MOVIE = "movie"
    SERIES = "series"


class MaturityLevel(IntEnum):
    """Ordered maturity ladder shared by titles and profiles.

    A profile at level L may watch any title whose level is <= L.
    """

    LITTLE_KIDS = 0
    OLDER_KIDS = 1
    TEENS = 2
    ADULTS = 3


#: US TV and MPAA ratings (as in the Netflix catalog) mapped onto the ladder.
RATING_TO_LEVEL: dict[str, MaturityLevel] = {
    "TV-Y": MaturityLevel.LITTLE_KIDS,
    "TV-G": MaturityLevel.LITTLE_KIDS,
    "G": MaturityLevel.LITTLE_KIDS,
    "TV-Y7": MaturityLevel.OLDER_KIDS,
    "TV-Y7-FV": MaturityLevel.OLDER_KIDS,
    "PG": MaturityLevel.OLDER_KIDS,
    "TV-PG": MaturityLevel.OLDER_KIDS,
    "PG-13": MaturityLevel.TEENS,
    "TV-14": MaturityLevel.TEENS,
    "R": MaturityLevel.ADULTS,
    "NC-17": MaturityLevel.ADULTS,
    "TV-MA": MaturityLevel.ADULTS,
    "NR": MaturityLevel.ADULTS,
    "UR": MaturityLevel.ADULTS,
}

#: The level assumed when a rating is missing or unknown: the safe side is "adults only".
UNKNOWN_RATING_LEVEL = MaturityLevel.ADULTS

#: Video qualities a title can be encoded in, lowest first.
VIDEO_QUALITIES = ("SD", "HD", "FHD", "UHD")


def maturity_level(rating: str | None) -> MaturityLevel:
    """Map a rating string (``"PG-13"``, ``"TV-MA"``) to the maturity ladder.

    Unknown or missing ratings map to ``ADULTS`` so that a kids profile never
    sees a title whose rating nobody checked.
    """
    if not rating:
        return UNKNOWN_RATING_LEVEL
    return RATING_TO_LEVEL.get(rating.strip().upper(), UNKNOWN_RATING_LEVEL)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Title(_Strict):
    """A movie or a series as the catalog lists it.

    ``countries`` lists where the title is licensed; an empty list means everywhere.
    ``duration_s`` is the runtime of a movie or the typical episode length of a series.
    """

    title_id: str = Field(min_length=1)
    type: TitleType
    title: str
    synopsis: str = ""
    genres: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    maturity_rating: str = ""
    maturity_level: MaturityLevel = UNKNOWN_RATING_LEVEL
    release_year: int | None = None
    date_added: datetime | None = None
    duration_s: int | None = Field(default=None, ge=0)
    cast: list[str] = Field(default_factory=list)
    director: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    video_qualities: list[str] = Field(default_factory=lambda: ["SD", "HD"])
    tags: list[str] = Field(default_factory=list)

    def licensed_in(self, country: str) -> bool:
        """Whether the title may be shown in ``country`` (ISO-3166 alpha-2)."""
        return not self.countries or country in self.countries


class Episode(_Strict):
    """One episode; watch events of a series name the episode id."""

    episode_id: str = Field(min_length=1)
    series_id: str
    season_number: int = Field(ge=1)
    episode_number: int = Field(ge=1)
    title: str = ""
    duration_s: int = Field(ge=0)


class Season(_Strict):
    """A numbered season of a series with its episodes in order."""

    season_number: int = Field(ge=1)
    episodes: list[Episode]


class Series(_Strict):
    """A series title with its seasons: the tree the catalog API returns."""

    title: Title
    seasons: list[Season]


class Account(_Strict):
    """A paying account; it owns up to five profiles."""

    account_id: str = Field(min_length=1)
    email: str
    country: str = Field(min_length=2, max_length=2)
    plan: str = "standard"
    created_at: datetime


class Profile(_Strict):
    """A viewer inside an account: its own history, language and maturity level."""

    profile_id: str = Field(min_length=1)
    account_id: str
    name: str = Field(min_length=1, max_length=50)
    language: str = "en"
    maturity_level: MaturityLevel = MaturityLevel.ADULTS
    is_kids: bool = False
    country: str = "US"
    created_at: datetime | None = None


class WatchEvent(_Strict):
    """A playback progress report: the profile reached ``position_s`` of ``duration_s``.

    ``title_id`` is the episode id when a series is watched. ``rating`` carries the
    explicit rating of datasets that have one (MovieLens stars), else ``None``.
    """

    event_id: str = Field(min_length=1)
    profile_id: str = Field(min_length=1)
    title_id: str = Field(min_length=1)
    ts: datetime
    position_s: int = Field(ge=0)
    duration_s: int = Field(ge=0)
    device: str = "unknown"
    country: str = "US"
    rating: float | None = None

    @property
    def progress(self) -> float:
        """Share of the title watched, in [0, 1]."""
        return min(1.0, self.position_s / self.duration_s) if self.duration_s else 0.0


class Exposure(_Strict):
    """One title shown to a profile in one row of one response.

    The durable record experiments are analysed from: it ties what was shown to
    the model version, experiment and variant that chose it.
    """

    request_id: str
    ts: datetime
    profile_id: str
    row_key: str
    position: int = Field(ge=0)
    title_id: str
    model_version: str = ""
    experiment_key: str = ""
    variant: str = ""
