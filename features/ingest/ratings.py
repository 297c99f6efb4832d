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

from pathlib import Path

import numpy as np
import pandas as pd

from core.domain import MaturityLevel, TitleType, maturity_level

#: Runtime assumed for a movie whose dataset gives none (100 minutes).
DEFAULT_MOVIE_DURATION_S = 6000

#: Country given to accounts and profiles of datasets that do not say where users live.
DEFAULT_COUNTRY = "US"


def rating_events(
    *,
    users: pd.Series,
    items: pd.Series,
    title_ids: pd.Series,
    ratings: pd.Series,
    seconds: pd.Series,
    durations: pd.Series,
    event_prefix: str,
    profile_prefix: str,
    max_rating: float,
) -> pd.DataFrame:
    """Watch events from aligned rating columns.

    Args:
        users: external user ids as strings, one per rating.
        items: external item ids as strings (as the dataset spells them), one per rating.
        title_ids: the lake title id of each rating's item.
        ratings: stars, float.
        seconds: unix time of each rating, int.
        durations: ``title_id`` -> runtime in seconds for the titles that have one.
        event_prefix: first part of ``event_id`` (``"ml"``, ``"mt"``).
        profile_prefix: prefix of profile ids (``"mlu"``, ``"mtu"``).
        max_rating: the top of the rating scale (5 for MovieLens, 10 for MovieTweetings).

    Returns:
        A frame with the columns of the ``watch_events`` table.
    """
    users = users.reset_index(drop=True)
    items = items.reset_index(drop=True)
    event_ids = event_prefix + "-" + users + "-" + items
    pair = pd.DataFrame({"u": users, "i": items, "t": seconds.reset_index(drop=True)})
    if pair.duplicated(["u", "i"]).any():
        order = pair.sort_values(["u", "i", "t"], kind="stable")
        occurrence = order.groupby(["u", "i"], sort=False).cumcount().reindex(pair.index).to_numpy()
        repeat = occurrence > 0
        event_ids = event_ids.where(~repeat, event_ids + "-" + pd.Series(occurrence + 1).astype(str))
    title_ids = title_ids.reset_index(drop=True)
    duration = title_ids.map(durations).fillna(DEFAULT_MOVIE_DURATION_S).astype("int64").to_numpy()
    stars = ratings.reset_index(drop=True).to_numpy(dtype="float64")
    progress = np.clip(stars / max_rating, 0.0, 1.0)
    return pd.DataFrame(
        {
            "event_id": event_ids,
            "profile_id": profile_prefix + users,
            "title_id": title_ids,
            "ts": pd.to_datetime(seconds.reset_index(drop=True).to_numpy(dtype="int64"), unit="s", utc=True),
            "position_s": np.rint(duration * progress).astype("int64"),
            "duration_s": duration,
            "device": "unknown",
            "country": DEFAULT_COUNTRY,
            "rating": stars.astype("float32"),
        }
    )


def rating_users(
    *, users: pd.Series, seconds: pd.Series, profile_prefix: str, account_prefix: str, source_name: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One account and one adult profile per distinct user, created at the user's first rating.

    Returns:
        ``(accounts, profiles)`` frames with the columns of the lake tables.
    """
    first = (
        pd.DataFrame({"u": users.to_numpy(), "t": seconds.to_numpy()})
        .groupby("u", sort=False)["t"]
        .min()
        .sort_index(key=_natural_key)
    )
    user_ids = pd.Series(first.index.astype(str))
    created = pd.to_datetime(first.to_numpy(dtype="int64"), unit="s", utc=True)
    account_ids = account_prefix + user_ids
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
            "profile_id": profile_prefix + user_ids,
            "account_id": account_ids,
            "name": f"{source_name} user " + user_ids,
            "language": "en",
            "maturity_level": int(MaturityLevel.ADULTS),
            "is_kids": False,
            "country": DEFAULT_COUNTRY,
            "created_at": created,
        }
    )
    return accounts, profiles


def _natural_key(index: pd.Index) -> pd.Index:
    """Sort numeric user ids as numbers (``2`` before ``10``), anything else as text after them."""
    as_number = pd.to_numeric(pd.Series(index), errors="coerce")
    return pd.Index(as_number.fillna(np.inf).to_numpy())


def text_encoding(path: Path) -> str:
    """``utf-8`` when the whole file decodes as UTF-8, else ``latin-1`` (old GroupLens files)."""
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


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


def add_missing_titles(titles: pd.DataFrame, referenced: pd.Series, source_name: str) -> tuple[pd.DataFrame, list[str]]:
    """Add placeholder titles for ids that ratings name but the catalog file lacks.

    Returns:
        The completed titles and a note per repair (empty when nothing was missing).
    """
    missing = pd.Index(referenced.unique()).difference(pd.Index(titles["title_id"]))
    if missing.empty:
        return titles, []
    extra = movie_titles(
        title_ids=pd.Series(missing, dtype=object),
        names=pd.Series([f"Unknown {source_name} title {m}" for m in missing], dtype=object),
        genres=pd.Series([[] for _ in missing], dtype=object),
    )
    note = f"{len(missing)} rated title(s) missing from the catalog file got placeholder titles (e.g. {missing[0]})"
    return pd.concat([titles, extra], ignore_index=True), [note]


def genre_lists(genres: pd.Series, *, empty_marker: str = "(no genres listed)") -> pd.Series:
    """``"Action|Comedy"`` -> ``["Action", "Comedy"]``; the dataset's "no genre" marker -> ``[]``."""
    return genres.fillna("").map(lambda text: [g for g in text.split("|") if g and g != empty_marker])


_YEAR_PATTERN = r"^(?P<name>.*?)\s*\((?P<year>\d{4})(?:[-–]\d{0,4})?\)\s*$"
_QUALITIES = ("SD", "HD")
