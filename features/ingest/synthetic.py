"""A synthetic streaming service: catalog, accounts, profiles and watch history.

The generator is meant to be trained and evaluated on, so the history has the
structure real services see (and models can learn):

* a catalog of movies and series with episodes, Zipf-like popularity, genres,
  maturity ratings and per-country licensing (``features.ingest.synthetic_catalog``);
* accounts of one to five profiles, some of them kids profiles, each with
  latent genre tastes; kids watch only titles at or below their maturity level,
  everybody only what is licensed in their country;
* sessions placed with weekly seasonality and an evening peak; titles chosen
  by taste x popularity x a new-release spike that decays after ``date_added``;
  series watched as binge runs of consecutive episodes (the event's
  ``title_id`` is the episode id); partial progress and abandonment, more
  often when the title is off the viewer's taste
  (``features.ingest.synthetic_history``).

Everything is vectorised numpy and deterministic by seed: the same config
gives identical tables. Ids: titles ``syt<n>``, episodes ``syt<n>-s<season>e<episode>``,
accounts ``sya<n>``, profiles ``syp<n>``, events ``sye<n>`` (in time order).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from core.errors import InvalidInputError
from core.lake import Lake
from features.ingest.frames import DatasetFrames, IngestReport, write_frames

logger = logging.getLogger(__name__)

#: The window a generated catalog's history covers when no ``start`` is given.
DEFAULT_START = date(2024, 1, 1)

#: Countries profiles live in (and titles are licensed in) when none are given, with their shares.
DEFAULT_COUNTRIES = ("US", "GB", "CA", "DE", "FR", "ES", "BR", "IN", "JP", "KR")
DEFAULT_COUNTRY_WEIGHTS = (0.35, 0.1, 0.06, 0.08, 0.07, 0.06, 0.1, 0.1, 0.05, 0.03)


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. Sizes default to ``scale`` x (5,000 titles, 20,000 profiles, 1,000,000 events).

    Attributes:
        seed: random seed; the same config always gives identical tables.
        scale: size knob applied to the sizes left as ``None``.
        n_titles: movies + series in the catalog (ignored when history is generated over a loaded catalog).
        n_profiles: profiles (accounts hold one to five of them).
        n_events: watch events, exactly.
        start: first day of the history; ``None``: 2024-01-01 for a generated catalog, and the
            ``days`` up to the latest ``date_added`` for a loaded one.
        days: length of the history window in days.
        series_share: share of the catalog that is series.
        kids_share: share of profiles that are kids profiles (never an account's first profile).
        countries: ISO alpha-2 codes where profiles live.
        country_weights: share of accounts per country (``None``: uniform, or the default shares).
        new_release_share: share of generated titles added during the window (they spike, then decay).
        zipf_exponent: popularity of the title at popularity rank r is ``r ** -zipf_exponent``.
        release_boost: a title is ``1 + release_boost`` times as attractive on the day it is added...
        release_decay_days: ...and the extra attraction decays with this e-folding time.
        taste_clusters: groups of profiles that share a liking for particular titles beyond genre.
        taste_strength: standard deviation of a cluster's log-liking of a title (0: genre taste only).
        show_progress: tqdm progress bars on stderr (the CLI turns them on; library calls stay quiet).
    """

    seed: int = 42
    scale: float = 1.0
    n_titles: int | None = None
    n_profiles: int | None = None
    n_events: int | None = None
    start: date | None = None
    days: int = 365
    series_share: float = 0.3
    kids_share: float = 0.15
    countries: tuple[str, ...] = DEFAULT_COUNTRIES
    country_weights: tuple[float, ...] | None = None
    new_release_share: float = 0.12
    zipf_exponent: float = 0.8
    release_boost: float = 8.0
    release_decay_days: float = 14.0
    taste_clusters: int = 24
    taste_strength: float = 2.0
    show_progress: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not (self.scale > 0 and math.isfinite(self.scale)):
            problems.append(f"scale must be > 0, got {self.scale}")
        for name in ("n_titles", "n_profiles", "n_events"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be at least 1, got {value}")
        if self.days < 1:
            problems.append(f"days must be at least 1, got {self.days}")
        for name in ("series_share", "kids_share", "new_release_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name} must be between 0 and 1, got {value}")
        if not self.countries or any(len(c) != 2 or not c.isalpha() for c in self.countries):
            problems.append(f"countries must be ISO alpha-2 codes such as 'US', got {self.countries}")
        if self.country_weights is not None and (
            len(self.country_weights) != len(self.countries)
            or min(self.country_weights) < 0
            or sum(self.country_weights) <= 0
        ):
            problems.append("country_weights must give one non-negative weight per country")
        if self.taste_clusters < 1 or self.taste_strength < 0:
            problems.append("taste_clusters must be >= 1 and taste_strength >= 0")
        if self.release_boost < 0 or self.release_decay_days <= 0:
            problems.append("release_boost must be >= 0 and release_decay_days > 0")
        if problems:
            raise InvalidInputError("invalid synthetic config: " + "; ".join(problems))

    @property
    def titles(self) -> int:
        """Catalog size after applying ``scale``."""
        return self.n_titles if self.n_titles is not None else max(10, round(5_000 * self.scale))

    @property
    def profiles(self) -> int:
        """Profile count after applying ``scale``."""
        return self.n_profiles if self.n_profiles is not None else max(2, round(20_000 * self.scale))

    @property
    def events(self) -> int:
        """Event count after applying ``scale``."""
        return self.n_events if self.n_events is not None else max(10, round(1_000_000 * self.scale))

    def weights(self) -> list[float]:
        """Normalised share of accounts per country."""
        if self.country_weights is not None:
            raw = list(self.country_weights)
        elif self.countries == DEFAULT_COUNTRIES:
            raw = list(DEFAULT_COUNTRY_WEIGHTS)
        else:
            raw = [1.0] * len(self.countries)
        total = sum(raw)
        return [w / total for w in raw]

    def window(self, latest_added: pd.Timestamp | None = None) -> tuple[datetime, datetime]:
        """``(start, end)`` of the history as UTC datetimes (end exclusive)."""
        if self.start is not None:
            first = self.start
        elif latest_added is not None and not pd.isna(latest_added):
            first = (latest_added.to_pydatetime() + timedelta(days=1)).date() - timedelta(days=self.days)
        else:
            first = DEFAULT_START
        begin = datetime(first.year, first.month, first.day, tzinfo=UTC)
        return begin, begin + timedelta(days=self.days)


def generate_frames(config: SyntheticConfig) -> DatasetFrames:
    """Generate a whole dataset (catalog and history) as lake frames; no lake is touched."""
    from features.ingest.synthetic_catalog import catalog_frames

    if config.start is None:
        config = replace(config, start=DEFAULT_START)
    titles, episodes = catalog_frames(config)
    accounts, profiles, events = history_frames(config, titles, episodes)
    return DatasetFrames(
        source="synthetic",
        titles=titles,
        episodes=episodes,
        accounts=accounts,
        profiles=profiles,
        watch_events=events,
    )


def history_frames(
    config: SyntheticConfig, titles: pd.DataFrame, episodes: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Generate accounts, profiles and watch events over any catalog (generated or loaded).

    Args:
        config: sizes, window and behaviour knobs (``n_titles`` is not used here).
        titles: frame shaped like the ``titles`` table.
        episodes: frame shaped like the ``episodes`` table (may be empty).

    Returns:
        ``(accounts, profiles, watch_events)`` frames shaped like the lake tables.
    """
    from features.ingest.synthetic_history import simulate

    return simulate(config, titles, episodes)


def generate(lake: Lake, config: SyntheticConfig | None = None) -> IngestReport:
    """Generate a dataset and replace the lake's dataset tables with it."""
    started = time.perf_counter()
    frames = generate_frames(config or SyntheticConfig())
    return write_frames(lake, frames, started=started)
