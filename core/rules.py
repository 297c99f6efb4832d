"""Marquee's shared rules, each defined once: every package calls these instead of keeping a copy.

Before this module each side of the API → model-server hop held its own copy
of the same facts, and they drifted: the API counted a watch as completed at
0.92 of its duration while serving, features and training said 0.9 (titles
just finished came back on the page); visibility was decided in four places
with different answers for an unknown title or an unknown country; model
aliases were spelled out in five. The rules here are plain functions of plain
values (no catalog class, no framework), so the API's snapshot, the model
server's arrays, the feature pipelines and training can all call them.

``models`` may not import ``core`` (it stays a pure modelling library): its
callers pass the values in (e.g. ``completed_share=COMPLETED_SHARE``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from typing import TYPE_CHECKING, Final, Literal

from core.domain import MaturityLevel

if TYPE_CHECKING:  # pandas is only needed by ``popularity_scores``' callers, which have it
    import pandas as pd

# --- watching ------------------------------------------------------------------------------

#: Share of a title watched from which it counts as completed: it is not recommended again,
#: Continue Watching moves on to the next episode, and outcomes count it as a completion.
COMPLETED_SHARE: Final = 0.9
#: Below this share a title was only sampled: it is not "in progress".
STARTED_SHARE: Final = 0.02


def progress(position_s: float, duration_s: float | None) -> float:
    """Share of a title watched, in [0, 1] (0 when the duration is unknown)."""
    return min(1.0, max(0.0, position_s / duration_s)) if duration_s else 0.0


def is_completed(share: float) -> bool:
    """Whether a watch that reached ``share`` of the title counts as completed."""
    return share >= COMPLETED_SHARE


def is_in_progress(share: float) -> bool:
    """Whether a watch that reached ``share`` is worth resuming (started, not completed)."""
    return STARTED_SHARE <= share < COMPLETED_SHARE


#: Most watches a model-server request carries (``serving.contract.ViewerContext``): the models see no more.
MAX_HISTORY: Final = 200


def request_history(played_ids: Iterable[str]) -> list[str]:
    """What a model-server request carries of a history given oldest first: each id once, at its latest
    watch, the newest ``MAX_HISTORY`` of them, oldest first.

    The API sends this (its latest positions, capped); offline protocols that claim to
    measure what serving does (fold-in) must ask the models with the same list, not a
    longer one, and leave the older titles to the page's filters.
    """
    latest = dict.fromkeys(reversed(list(played_ids)))  # newest first, each id at its latest watch
    return list(islice(latest, MAX_HISTORY))[::-1]


# --- who may see a title -------------------------------------------------------------------

#: The highest maturity level a kids profile may have (older kids).
KIDS_MAX_LEVEL: Final = int(MaturityLevel.OLDER_KIDS)


def viewer_level(maturity_level: int | None, is_kids: bool = False) -> int:
    """The maturity ceiling a viewer's titles are filtered at.

    A missing level means adults (the profile default); a kids profile never goes
    above :data:`KIDS_MAX_LEVEL`, whatever its stored level says.
    """
    level = int(MaturityLevel.ADULTS) if maturity_level is None else int(maturity_level)
    return min(level, KIDS_MAX_LEVEL) if is_kids else level


def level_allows(title_level: int, max_level: int) -> bool:
    """The maturity half of :func:`may_see`: a title rated ``title_level`` is within ``max_level``."""
    return title_level <= max_level


def may_see(
    title_level: int | None,
    title_countries: Collection[str] | None,
    max_level: int,
    country: str | None,
) -> bool:
    """The one visibility rule: may a viewer at ``max_level`` in ``country`` see this title?

    Args:
        title_level: the title's maturity level; ``None`` means the title is unknown to the
            caller's catalog, and an unknown title is never shown (nobody checked its rating
            or licence).
        title_countries: where the title is licensed; empty or ``None`` means everywhere.
        max_level: the viewer's ceiling (:func:`viewer_level`).
        country: the viewer's country; ``None`` (unknown) passes only titles licensed
            everywhere, the safe side for licensing.
    """
    if title_level is None or not level_allows(title_level, max_level):
        return False
    if not title_countries:
        return True
    return country is not None and country in title_countries


# --- canonical title -----------------------------------------------------------------------


def canonical_title(title_id: str, series_of: Mapping[str, str]) -> str:
    """The catalog title a played id stands for: the series of an episode, else the id itself.

    Models learn from what was played (episodes); pages, exposures and popularity
    count catalog titles (the series).
    """
    return series_of.get(title_id, title_id)


# --- model aliases -------------------------------------------------------------------------

#: The registry alias of the model every viewer gets unless an experiment says otherwise.
CHAMPION: Final = "champion"
#: The registry alias of the model an experiment compares against the champion.
CHALLENGER: Final = "challenger"
#: Every alias a model version can carry, in loading order.
MODEL_ALIASES: Final = (CHAMPION, CHALLENGER)
#: The type of a variant name in requests and assignments.
Variant = Literal["champion", "challenger"]


def model_alias(variant: str | None) -> str:
    """The registry alias a variant is served by; unknown or missing variants get the champion."""
    return variant if variant in MODEL_ALIASES else CHAMPION


# --- home page layouts, as data ------------------------------------------------------------

#: Row kinds a layout is made of. ``genres`` stands for the profile's favourite-genre rows.
RowKind = Literal["continue_watching", "top_picks", "because_you_watched", "trending", "new_releases", "genres"]

#: Each layout an experiment may assign: its rows in page order (rows with nothing to show are dropped).
LAYOUTS: Final[Mapping[str, tuple[RowKind, ...]]] = {
    "default": ("continue_watching", "top_picks", "because_you_watched", "trending", "new_releases", "genres"),
    "genre_first": (
        "continue_watching",
        "genres",
        "top_picks",
        "because_you_watched",
        "trending",
        "new_releases",
    ),
    "trending_first": (
        "continue_watching",
        "trending",
        "top_picks",
        "because_you_watched",
        "new_releases",
        "genres",
    ),
}
#: The layout of a page no experiment changes (and of an unknown layout name).
DEFAULT_LAYOUT: Final = "default"

#: Display names of the fixed rows (genre rows are named after their genre).
ROW_NAMES: Final[Mapping[str, str]] = {
    "continue_watching": "Continue Watching",
    "top_picks": "Top Picks for You",
    "trending": "Trending Now",
    "new_releases": "New Releases",
}


def layout_rows(layout: str | None) -> tuple[RowKind, ...]:
    """The rows of ``layout`` in page order; an unknown name gets the default layout."""
    return LAYOUTS.get(layout or DEFAULT_LAYOUT, LAYOUTS[DEFAULT_LAYOUT])


# --- popularity and trending ---------------------------------------------------------------

#: Plays lose half their trending weight every week (measured on the data's clock).
TRENDING_HALF_LIFE: Final = timedelta(days=7)
#: The data's clock is this quantile of its play times, not the latest one: a handful of fresh
#: events (an API's, stamped with today's date on top of a dataset that ends years earlier)
#: must not move the clock and age every other play to nothing.
DATA_CLOCK_QUANTILE: Final = 0.99


@dataclass(frozen=True)
class PopularityScores:
    """What both fallbacks (the API's and the model server's) rank titles by.

    Attributes:
        plays: catalog title → number of distinct profiles that played it.
        trending: catalog title → plays weighted by their age on the data's clock.
        clock: the data's clock (``None`` without plays), reported for logs and tests.
    """

    plays: dict[str, float]
    trending: dict[str, float]
    clock: pd.Timestamp | None


def popularity_scores(events: pd.DataFrame, canonical: Callable[[str], str | None]) -> PopularityScores:
    """Count plays and trending weight per catalog title from watch events.

    One (profile, catalog title) pair counts once, at its latest play. Trending
    weights each pair by ``0.5 ** (age / TRENDING_HALF_LIFE)`` where the age is
    taken against the data's own clock (:data:`DATA_CLOCK_QUANTILE` of the play
    times), never the wall clock; plays after the clock weigh 1, like the
    latest history. So three new watches add three plays' weight and do not
    outweigh two years of a dataset's history.

    Args:
        events: columns ``profile_id``, ``title_id``, ``ts``.
        canonical: maps a played id to its catalog title, or ``None`` to drop it
            (an id the caller's catalog does not know).
    """
    import pandas as pd

    if events.empty:
        return PopularityScores({}, {}, None)
    frame = events[["profile_id", "title_id", "ts"]].copy()
    ids = frame["title_id"].astype(str)
    mapping = {t: canonical(t) for t in ids.unique()}
    frame["series"] = ids.map(mapping)
    frame = frame.dropna(subset=["series"])
    if frame.empty:
        return PopularityScores({}, {}, None)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    pairs = frame.groupby(["profile_id", "series"], as_index=False)["ts"].max()
    plays = pairs["series"].value_counts().astype(float).to_dict()
    clock = pairs["ts"].quantile(DATA_CLOCK_QUANTILE)
    age_s = (clock - pairs["ts"]).dt.total_seconds().clip(lower=0.0)
    pairs["weight"] = 0.5 ** (age_s / TRENDING_HALF_LIFE.total_seconds())
    trending = pairs.groupby("series")["weight"].sum().astype(float).to_dict()
    return PopularityScores({str(k): v for k, v in plays.items()}, {str(k): v for k, v in trending.items()}, clock)
