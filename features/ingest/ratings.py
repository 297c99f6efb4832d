"""Explicit ratings (stars) turned into watch events, accounts and profiles.

Public rating datasets have users, items, stars and times but no playback. The
mapping below is shared by every rating loader so that all of them look alike
in the lake:

* each user becomes one account (``<account_prefix><user>``) with one profile
  (``<profile_prefix><user>``), adult, language ``en``, country ``US`` (the
  datasets say nothing about either), created at the user's first rating;
* each rating becomes one watch event with ``rating`` = the original stars,
  ``duration_s`` = the title's runtime (6000 s when unknown) and
  ``position_s = round(duration_s * rating / max_rating)``, so a top rating
  looks like a completed watch and a low one like an abandoned start;
* ``event_id`` is ``<event_prefix>-<user>-<item>``; a repeated (user, item)
  pair gets ``-2``, ``-3``... in time order, so ids are deterministic and unique.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.domain import MaturityLevel, TitleType, maturity_level
from features.ingest.frames import DatasetFrames, empty_frame

#: Runtime assumed for a movie whose dataset gives none (100 minutes).
DEFAULT_MOVIE_DURATION_S = 6000

#: Country given to accounts and profiles of datasets that do not say where users live.
DEFAULT_COUNTRY = "US"


@dataclass(frozen=True)
class RatingSource:
    """How one rating dataset names things in the lake."""

    name: str
    title_prefix: str
    profile_prefix: str
    account_prefix: str
    event_prefix: str
    max_rating: float


def rating_frames(*, source: str, spec: RatingSource, ratings: pd.DataFrame, catalog: pd.DataFrame) -> DatasetFrames:
    """Lake frames from parsed ratings and catalog.

    Args:
        source: the dataset's name in reports (``"movielens:ml-1m"``).
        spec: id prefixes and rating scale of the dataset.
        ratings: columns ``user``, ``item`` (as the dataset spells them, int or str),
            ``rating`` (float) and ``timestamp`` (unix seconds, int), one row per rating.
        catalog: columns ``item``, ``title``, ``genres`` (lists) and optionally ``tags`` (lists).

    Rated items missing from the catalog get placeholder titles and a note.
    String id columns of the events are pyarrow-backed (fast to build, zero-copy into the lake).
    """
    notes: list[str] = []
    missing = pd.Index(pd.unique(ratings["item"])).difference(pd.Index(catalog["item"]))
    if len(missing):
        placeholders = pd.DataFrame(
            {
                "item": missing,
                "title": [f"Unknown {spec.name} title {m}" for m in missing],
                "genres": [[] for _ in missing],
            }
        )
        if "tags" in catalog:
            placeholders["tags"] = [[] for _ in missing]
        catalog = pd.concat([catalog, placeholders], ignore_index=True)
        notes.append(
            f"{len(missing)} rated title(s) missing from the catalog file got placeholder titles (e.g. {missing[0]})"
        )
    titles = movie_titles(
        title_ids=spec.title_prefix + catalog["item"].astype(str),
        names=catalog["title"],
        genres=catalog["genres"],
        tags=catalog.get("tags"),
    )
    durations = pd.Series(titles["duration_s"].to_numpy(dtype="int64"), index=catalog["item"].to_numpy())
    duration = durations.reindex(ratings["item"].to_numpy()).to_numpy(dtype="int64")
    events = _events(spec, ratings, duration)
    accounts, profiles = _users(spec, ratings)
    return DatasetFrames(
        source=source,
        titles=titles,
        episodes=empty_frame("episodes"),
        accounts=accounts,
        profiles=profiles,
        watch_events=events,
        notes=tuple(notes),
    )


def _text(values: pd.Series) -> pa.Array:
    """A column as an arrow string array (ints are formatted by arrow, which is fast)."""
    array = pa.array(values.to_numpy())
    return array if pa.types.is_string(array.type) else pc.cast(array, pa.string())


def _arrow_series(array: pa.Array | pa.ChunkedArray) -> pd.Series:
    return pd.Series(array, dtype=pd.ArrowDtype(pa.string()))


def _events(spec: RatingSource, ratings: pd.DataFrame, duration: np.ndarray) -> pd.DataFrame:
    users, items = _text(ratings["user"]), _text(ratings["item"])
    event_ids = pc.binary_join_element_wise(spec.event_prefix, users, items, "-")
    pairs = ratings[["user", "item", "timestamp"]].reset_index(drop=True)
    if pairs.duplicated(["user", "item"]).any():
        order = pairs.sort_values(["user", "item", "timestamp"], kind="stable")
        occurrence = order.groupby(["user", "item"], sort=False).cumcount().reindex(pairs.index).to_numpy()
        suffixed = pc.binary_join_element_wise(event_ids, pc.cast(pa.array(occurrence + 1), pa.string()), "-")
        event_ids = pc.if_else(pa.array(occurrence > 0), suffixed, event_ids)
    stars = ratings["rating"].to_numpy(dtype="float64")
    progress = np.clip(stars / spec.max_rating, 0.0, 1.0)
    return pd.DataFrame(
        {
            "event_id": _arrow_series(event_ids),
            "profile_id": _arrow_series(pc.binary_join_element_wise(spec.profile_prefix, users, "")),
            "title_id": _arrow_series(pc.binary_join_element_wise(spec.title_prefix, items, "")),
            "ts": pd.to_datetime(ratings["timestamp"].to_numpy(dtype="int64"), unit="s", utc=True),
            "position_s": np.rint(duration * progress).astype("int64"),
            "duration_s": duration,
            "device": "unknown",
            "country": DEFAULT_COUNTRY,
            "rating": stars.astype("float32"),
        }
    )


def _users(spec: RatingSource, ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One account and one adult profile per distinct user, created at the user's first rating."""
    first = ratings.groupby("user", sort=True)["timestamp"].min()
    user_ids = pd.Series(first.index.astype(str))
    created = pd.to_datetime(first.to_numpy(dtype="int64"), unit="s", utc=True)
    account_ids = spec.account_prefix + user_ids
    accounts = pd.DataFrame(
        {
            "account_id": account_ids,
            "email": account_ids + "@example.invalid",
            "country": DEFAULT_COUNTRY,
            "plan": "standard",
            "created_at": created,
        }
    )
    profiles = pd.DataFrame(
        {
            "profile_id": spec.profile_prefix + user_ids,
            "account_id": account_ids,
            "name": f"{spec.name} user " + user_ids,
            "language": "en",
            "maturity_level": int(MaturityLevel.ADULTS),
            "is_kids": False,
            "country": DEFAULT_COUNTRY,
            "created_at": created,
        }
    )
    return accounts, profiles


def text_encoding(path: Path) -> str:
    """``utf-8`` when the whole file decodes as UTF-8, else ``latin-1`` (old GroupLens files).

    ``utf-8-sig`` when the file starts with a byte-order mark, so the mark is not read as data.
    """
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"


def movie_titles(
    *,
    title_ids: pd.Series,
    names: pd.Series,
    genres: pd.Series,
    tags: pd.Series | None = None,
) -> pd.DataFrame:
    """Title rows for a movie-only rating dataset.

    The year is parsed from a trailing ``(1995)`` and removed from the name;
    maturity is unknown, so ``maturity_level(None)`` (adults) applies; the
    runtime is :data:`DEFAULT_MOVIE_DURATION_S`; ``countries`` is empty
    (licensed everywhere).

    Args:
        title_ids: lake title ids.
        names: titles as the dataset spells them, maybe with ``(year)``.
        genres: a list of genre names per title.
        tags: a list of tags per title (default: none).
    """
    names = names.reset_index(drop=True).fillna("").astype(str)
    parts = names.str.extract(_YEAR_PATTERN)
    clean = parts["name"].where(parts["name"].notna(), names).str.strip()
    clean = clean.where(clean != "", names.str.strip())
    years = pd.to_numeric(parts["year"], errors="coerce").astype("Int64")
    count = len(names)
    empty: list[list[str]] = [[] for _ in range(count)]
    return pd.DataFrame(
        {
            "title_id": title_ids.reset_index(drop=True),
            "type": TitleType.MOVIE.value,
            "title": clean,
            "synopsis": "",
            "genres": genres.reset_index(drop=True),
            "languages": empty,
            "maturity_rating": "",
            "maturity_level": int(maturity_level(None)),
            "release_year": years,
            "date_added": pd.Series(pd.NaT, index=range(count), dtype="datetime64[ms, UTC]"),
            "duration_s": DEFAULT_MOVIE_DURATION_S,
            "cast": empty,
            "director": empty,
            "countries": empty,
            "video_qualities": [list(_QUALITIES) for _ in range(count)],
            "tags": tags.reset_index(drop=True) if tags is not None else empty,
        }
    )


def genre_lists(genres: pd.Series, *, empty_marker: str = "(no genres listed)") -> pd.Series:
    """``"Action|Comedy"`` -> ``["Action", "Comedy"]``; the dataset's "no genre" marker -> ``[]``."""
    return genres.fillna("").map(lambda text: [g for g in text.split("|") if g and g != empty_marker])


_YEAR_PATTERN = r"^(?P<name>.*?)\s*\((?P<year>\d{4})(?:[-–]\d{0,4})?\)\s*$"
_QUALITIES = ("SD", "HD")
