"""Load the catalog (titles, episodes) from the lake into the API database.

The lake is filled by ``marquee data load netflix ...`` or ``marquee data
generate``; the API copies it so its OLTP database can answer catalog, search
and playback requests without reading parquet on the request path.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session
from tqdm import tqdm

from catalog_api.db.tables import EpisodeRow, TitleRow
from core.lake import Lake

logger = logging.getLogger(__name__)

_LIST_COLUMNS = ("genres", "languages", "cast", "director", "countries", "video_qualities", "tags")
_BATCH = 1000


def _list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [str(v) for v in value]


def _optional_int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def search_text(row: dict[str, Any]) -> str:
    """The denormalised text the search backends index: title, people, genres, synopsis."""
    parts = [row["title"], *row["cast"], *row["director"], *row["genres"], row["synopsis"]]
    return " ".join(p for p in parts if p)


def catalog_is_empty(session: Session) -> bool:
    """Whether the database has no titles yet."""
    return not session.scalar(select(func.count()).select_from(TitleRow))


def sync_catalog_from_lake(session: Session, lake: Lake) -> tuple[int, int]:
    """Replace the database catalog with the lake's ``titles`` and ``episodes``.

    Runs in the caller's transaction, so readers see the old catalog until the
    commit and never a half-loaded one. Returns ``(titles, episodes)`` loaded.

    Raises:
        NotFoundError: the lake has no ``titles`` table yet (the message says how to fill it).
    """
    titles = lake.read("titles")
    episodes = lake.read_or_empty("episodes")
    session.execute(delete(EpisodeRow))
    session.execute(delete(TitleRow))
    records = []
    for raw in tqdm(titles.to_dict("records"), desc="catalog titles", unit="title", disable=len(titles) < 5000):
        row = {
            "title_id": str(raw["title_id"]),
            "type": str(raw["type"]),
            "title": str(raw["title"]),
            "synopsis": raw.get("synopsis") or "",
            "maturity_rating": raw.get("maturity_rating") or "",
            "maturity_level": int(raw["maturity_level"]),
            "release_year": _optional_int(raw.get("release_year")),
            "date_added": None if pd.isna(raw.get("date_added")) else pd.Timestamp(raw["date_added"]).to_pydatetime(),
            "duration_s": _optional_int(raw.get("duration_s")),
            **{column: _list(raw.get(column)) for column in _LIST_COLUMNS},
        }
        if not row["video_qualities"]:
            row["video_qualities"] = ["SD", "HD"]
        row["search_text"] = search_text(row)
        records.append(row)
    for start in range(0, len(records), _BATCH):
        session.execute(insert(TitleRow), records[start : start + _BATCH])
    episode_records = [
        {
            "episode_id": str(e["episode_id"]),
            "series_id": str(e["series_id"]),
            "season_number": int(e["season_number"]),
            "episode_number": int(e["episode_number"]),
            "title": e.get("title") or "",
            "duration_s": int(e["duration_s"]),
        }
        for e in episodes.to_dict("records")
    ]
    for start in range(0, len(episode_records), _BATCH):
        session.execute(insert(EpisodeRow), episode_records[start : start + _BATCH])
    session.flush()
    logger.info("catalog synced from the lake: %d titles, %d episodes", len(records), len(episode_records))
    return len(records), len(episode_records)
