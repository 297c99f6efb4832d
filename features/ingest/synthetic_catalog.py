"""The synthetic catalog: movies and series with episodes, genres, maturity and licensing.

Genres carry maturity: ``Kids`` titles are rated for little or older kids,
``Family`` and ``Animation`` mostly for kids, ``Horror``/``Crime``/``Thriller``
mostly for adults, so kids profiles (which only see titles at or below their
level) end up with a kids catalog. Half the titles are licensed everywhere
(empty ``countries``), the rest in a random subset of the configured countries.
A share of titles is added during the history window (new releases).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.domain import TitleType
from features.ingest.countries import language_of

if TYPE_CHECKING:
    from features.ingest.synthetic import SyntheticConfig

#: Genres with their share of the catalog and the distribution of maturity levels 0..3.
GENRES: dict[str, tuple[float, tuple[float, float, float, float]]] = {
    "Drama": (0.14, (0.0, 0.05, 0.45, 0.5)),
    "Comedy": (0.12, (0.05, 0.2, 0.45, 0.3)),
    "Action": (0.09, (0.0, 0.05, 0.45, 0.5)),
    "Thriller": (0.07, (0.0, 0.0, 0.3, 0.7)),
    "Crime": (0.06, (0.0, 0.0, 0.25, 0.75)),
    "Romance": (0.06, (0.0, 0.05, 0.55, 0.4)),
    "Documentary": (0.07, (0.1, 0.2, 0.4, 0.3)),
    "Sci-Fi": (0.05, (0.0, 0.1, 0.5, 0.4)),
    "Fantasy": (0.04, (0.05, 0.2, 0.45, 0.3)),
    "Horror": (0.05, (0.0, 0.0, 0.15, 0.85)),
    "Kids": (0.07, (0.55, 0.45, 0.0, 0.0)),
    "Family": (0.05, (0.35, 0.45, 0.2, 0.0)),
    "Animation": (0.04, (0.3, 0.35, 0.25, 0.1)),
    "Anime": (0.03, (0.0, 0.15, 0.5, 0.35)),
    "Reality": (0.03, (0.05, 0.25, 0.5, 0.2)),
    "Music": (0.01, (0.1, 0.3, 0.4, 0.2)),
    "Sports": (0.01, (0.1, 0.3, 0.4, 0.2)),
    "Mystery": (0.01, (0.0, 0.1, 0.45, 0.45)),
}

_MOVIE_RATINGS = ("G", "PG", "PG-13", "R")
_SERIES_RATINGS = ("TV-Y", "TV-Y7", "TV-14", "TV-MA")
_ADJECTIVES = (
    "Silent", "Crimson", "Hidden", "Last", "Broken", "Golden", "Midnight", "Wild", "Lost", "Electric", "Frozen",
    "Secret", "Burning", "Distant", "Hollow", "Iron", "Velvet", "Endless", "Little", "Savage", "Quiet", "Bright",
    "Northern", "Final", "Sunken", "Restless", "Paper", "Glass", "Shadow", "Lucky",
)  # fmt: skip
_NOUNS = (
    "Harbor", "Kingdom", "Signal", "Garden", "Frontier", "Promise", "Empire", "River", "Witness", "Orbit", "Summer",
    "Detective", "Island", "Heist", "Crown", "Voyage", "Letters", "Circuit", "Valley", "Dragon", "Station", "Echo",
    "Tide", "Academy", "Legacy", "Mirror", "Storm", "Lantern", "Code", "Horizon",
)  # fmt: skip
_FIRST = (
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Emma",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemi",
    "Luca",
    "Maya",
    "Noah",
    "Olga",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
)
_LAST = (
    "Adams",
    "Berg",
    "Costa",
    "Dubois",
    "Eze",
    "Fischer",
    "Garcia",
    "Hayashi",
    "Ivanov",
    "Jensen",
    "Kim",
    "Lopez",
    "Moreau",
    "Nair",
    "Okafor",
    "Park",
    "Rossi",
    "Silva",
    "Tanaka",
    "Weber",
)


def catalog_frames(config: SyntheticConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate ``(titles, episodes)`` frames shaped like the lake tables, deterministic by seed."""
    rng = np.random.default_rng([config.seed, 1])
    n = config.titles
    names = list(GENRES)
    shares = np.array([GENRES[g][0] for g in names])
    shares = shares / shares.sum()
    primary = rng.choice(len(names), size=n, p=shares)
    secondary = rng.choice(len(names), size=n, p=shares)
    has_second = (rng.random(n) < 0.5) & (secondary != primary)
    level_table = np.array([GENRES[g][1] for g in names])
    cumulative = level_table.cumsum(axis=1)
    levels = (rng.random(n)[:, None] > cumulative[primary]).sum(axis=1).clip(0, 3)
    is_series = rng.random(n) < config.series_share
    start, end = config.window()
    start_ms = int(start.timestamp() * 1000)
    window_ms = int((end - start).total_seconds() * 1000)
    new = rng.random(n) < config.new_release_share
    back_catalog_ms = (rng.random(n) * 6 * 365 * 86_400_000).astype(np.int64)
    added_ms = np.where(new, start_ms + (rng.random(n) * window_ms).astype(np.int64), start_ms - back_catalog_ms)
    added = pd.to_datetime(added_ms, unit="ms", utc=True)
    lag = np.where(new, 0, np.minimum(rng.geometric(0.15, size=n) - 1, 40))
    release_year = added.year.to_numpy() - lag
    countries = np.array(config.countries)
    origin = rng.choice(len(countries), size=n, p=config.weights())
    everywhere = rng.random(n) < 0.5
    licensed = (rng.random((n, len(countries))) < 0.6) | (np.arange(len(countries))[None, :] == origin[:, None])
    movie_minutes = rng.integers(80, 161, size=n)
    episode_minutes = rng.integers(20, 61, size=n)
    duration_s = np.where(is_series, episode_minutes, movie_minutes) * 60
    adjective = rng.integers(0, len(_ADJECTIVES), size=n)
    noun = rng.integers(0, len(_NOUNS), size=n)
    people = rng.integers(0, len(_FIRST) * len(_LAST), size=(n, 4))
    quality = rng.random(n)
    title_ids = [f"syt{i}" for i in range(n)]
    rows = {
        "title_id": title_ids,
        "type": np.where(is_series, TitleType.SERIES.value, TitleType.MOVIE.value),
        "title": [f"The {_ADJECTIVES[a]} {_NOUNS[b]}" for a, b in zip(adjective, noun, strict=True)],
        "synopsis": [
            f"A {names[g].lower()} {'series' if s else 'film'} from {countries[o]}."
            for g, s, o in zip(primary, is_series, origin, strict=True)
        ],
        "genres": [
            [names[p], names[q]] if two else [names[p]]
            for p, q, two in zip(primary, secondary, has_second, strict=True)
        ],
        "languages": [[language_of(countries[o])] for o in origin],
        "maturity_rating": np.where(is_series, np.array(_SERIES_RATINGS)[levels], np.array(_MOVIE_RATINGS)[levels]),
        "maturity_level": levels.astype(np.int8),
        "release_year": release_year.astype(np.int16),
        "date_added": added,
        "duration_s": duration_s.astype(np.int32),
        "cast": [[_person(p) for p in row[1:]] for row in people],
        "director": [[_person(row[0])] for row in people],
        "countries": [[] if all_ else list(countries[mask]) for all_, mask in zip(everywhere, licensed, strict=True)],
        "video_qualities": [
            ["SD", "HD", "FHD", "UHD"] if q < 0.25 else ["SD", "HD", "FHD"] if q < 0.6 else ["SD", "HD"]
            for q in quality
        ],
        "tags": [[] for _ in range(n)],
    }
    titles = pd.DataFrame(rows)
    episodes = _episodes(rng, np.flatnonzero(is_series), title_ids, duration_s)
    return titles, episodes


def _person(code: int) -> str:
    return f"{_FIRST[code % len(_FIRST)]} {_LAST[code // len(_FIRST)]}"


def _episodes(
    rng: np.random.Generator, series: np.ndarray, title_ids: list[str], typical_s: np.ndarray
) -> pd.DataFrame:
    """One to five seasons of 6-13 episodes per series, each about the series' typical length."""
    seasons = np.minimum(rng.geometric(0.5, size=len(series)), 5)
    season_series = np.repeat(series, seasons)
    season_number = np.concatenate([np.arange(1, s + 1) for s in seasons]) if len(series) else np.array([], int)
    per_season = rng.integers(6, 14, size=len(season_series))
    episode_series = np.repeat(season_series, per_season)
    episode_season = np.repeat(season_number, per_season)
    episode_number = np.concatenate([np.arange(1, k + 1) for k in per_season]) if len(per_season) else np.array([], int)
    lengths = np.rint(typical_s[episode_series] * rng.uniform(0.9, 1.1, size=len(episode_series)))
    series_ids = [title_ids[i] for i in episode_series]
    return pd.DataFrame(
        {
            "episode_id": [f"{s}-s{a}e{b}" for s, a, b in zip(series_ids, episode_season, episode_number, strict=True)],
            "series_id": series_ids,
            "season_number": episode_season.astype(np.int16),
            "episode_number": episode_number.astype(np.int16),
            "title": [f"Episode {b}" for b in episode_number],
            "duration_s": lengths.astype(np.int32),
        }
    )
