"""The Netflix-titles catalog CSV into lake frames, optionally with synthetic history.

Columns (as in the public ``netflix_titles.csv``): ``show_id, type, title,
director, cast, country, date_added, release_year, rating, duration,
listed_in, description``; ``director``, ``cast``, ``country`` and
``description`` may be absent or empty.

Mapping: ``s1`` -> title ``nf1``; ``Movie`` -> movie, ``TV Show`` -> series;
``rating`` -> ``maturity_rating`` and its level via ``core.domain.maturity_level``
(missing -> ADULTS); ``date_added`` ``25-Sep-21`` or ``September 25, 2021`` ->
UTC midnight; ``duration`` ``90 min`` -> 5400 s, ``2 Seasons`` -> two
seasons; ``listed_in`` -> genres; ``director``/``cast`` -> lists;
``country`` -> ISO alpha-2 codes in ``countries`` (the file names production
countries; the lake reads the list as where the title is licensed, so titles
without a country are licensed everywhere); unknown country names are dropped
with a note. Three rows of the public file carry the runtime in ``rating``
(``74 min``) and nothing in ``duration``; they are repaired with a note.

The CSV has no episodes, so each series gets deterministic synthetic seasons
(6-12 episodes each, 25-60 minutes): ``nf2-s1e1`` is season 1, episode 1 of
``nf2``. Watch history is optional and synthetic (``features.ingest.synthetic``).
"""

from __future__ import annotations

import csv
import logging
import re
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.domain import TitleType, maturity_level
from core.errors import DataFormatError
from core.lake import Lake
from features.ingest.countries import country_code
from features.ingest.delimited import require_file
from features.ingest.frames import DatasetFrames, IngestReport, empty_frame, write_frames
from features.ingest.synthetic import SyntheticConfig, history_frames

logger = logging.getLogger(__name__)

TITLE_PREFIX = "nf"
REQUIRED_COLUMNS = ("show_id", "type", "title", "date_added", "release_year", "rating", "duration", "listed_in")
OPTIONAL_COLUMNS = ("director", "cast", "country", "description")

_TYPES = {"Movie": TitleType.MOVIE, "TV Show": TitleType.SERIES}
_MINUTES = re.compile(r"^(\d+)\s*min$")
_SEASONS = re.compile(r"^(\d+)\s*Seasons?$")
_DATE_FORMATS = ("%d-%b-%y", "%B %d, %Y", "%Y-%m-%d")
_EPISODE_SEED = 20211  # fixed: the same CSV always gets the same synthetic episodes


def read_netflix_titles(path: str | Path, synthetic_history: SyntheticConfig | None = None) -> DatasetFrames:
    """Parse the catalog CSV (a file, or a folder holding ``netflix_titles.csv``) into lake frames.

    Args:
        path: the CSV or its folder.
        synthetic_history: when given, profiles and watch events are generated over the
            catalog with this configuration; otherwise accounts, profiles and events are empty.

    Raises:
        DataFormatError: a missing file or column, or a malformed row (with its line number).
    """
    csv_path = Path(path)
    if csv_path.is_dir():
        csv_path = csv_path / "netflix_titles.csv"
    require_file(csv_path, "the Netflix-titles catalog CSV (netflix_titles.csv)")
    rows, episodes, notes = _parse(csv_path)
    titles = pd.DataFrame(rows)
    episodes_frame = pd.DataFrame(episodes) if episodes else empty_frame("episodes")
    if titles.empty:
        raise DataFormatError(csv_path, "no titles", line=2, expected="one row per title after the header")
    titles["date_added"] = pd.to_datetime(titles["date_added"], utc=True).astype("datetime64[ms, UTC]")
    titles["release_year"] = titles["release_year"].astype("Int64")
    titles["duration_s"] = titles["duration_s"].astype("Int64")
    if synthetic_history is None:
        accounts, profiles, events = empty_frame("accounts"), empty_frame("profiles"), empty_frame("watch_events")
        source = "netflix"
    else:
        accounts, profiles, events = history_frames(synthetic_history, titles, episodes_frame)
        source = "netflix+synthetic"
    return DatasetFrames(
        source=source,
        titles=titles,
        episodes=episodes_frame,
        accounts=accounts,
        profiles=profiles,
        watch_events=events,
        notes=tuple(notes),
    )


def load_netflix_titles(path: str | Path, lake: Lake, synthetic_history: SyntheticConfig | None = None) -> IngestReport:
    """Parse the catalog (and generate history if asked) and replace the lake's dataset tables with it."""
    started = time.perf_counter()
    frames = read_netflix_titles(path, synthetic_history)
    return write_frames(lake, frames, started=started, path=str(path))


def _parse(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    episodes: list[dict[str, Any]] = []
    unknown_countries: dict[str, int] = {}
    repaired: list[int] = []
    seen: dict[str, int] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            for column in REQUIRED_COLUMNS:
                if column not in header:
                    raise DataFormatError(
                        path,
                        f"missing column {column!r}",
                        line=1,
                        column=column,
                        expected=f"a header with {', '.join(REQUIRED_COLUMNS)}",
                    )
            index = {name: i for i, name in enumerate(header)}
            line = reader.line_num + 1
            for fields in reader:
                if not fields or fields == [""]:
                    line = reader.line_num + 1
                    continue
                if len(fields) != len(header):
                    raise DataFormatError(
                        path,
                        f"{len(fields)} field(s) instead of {len(header)}",
                        line=line,
                        expected=f"{len(header)} comma-separated fields (quote values that contain commas)",
                    )
                record = {name: fields[i].strip() for name, i in index.items()}
                row, fixed = _title(path, line, record, unknown_countries)
                if row["title_id"] in seen:
                    raise DataFormatError(
                        path,
                        f"show_id {record['show_id']!r} already used on line {seen[row['title_id']]}",
                        line=line,
                        column="show_id",
                        expected="a unique show_id per row",
                    )
                seen[row["title_id"]] = line
                if fixed:
                    repaired.append(line)
                rows.append(row)
                if row["type"] == TitleType.SERIES.value:
                    episodes.extend(_episodes(row, int(row.pop("_seasons"))))
                else:
                    row.pop("_seasons")
                line = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"is not valid UTF-8 text ({exc.reason})", expected="a UTF-8 CSV") from None
    except csv.Error as exc:
        raise DataFormatError(path, f"is not valid CSV ({exc})", expected="comma-separated values") from None
    notes = []
    if repaired:
        notes.append(
            f"{len(repaired)} row(s) had the runtime in 'rating' and no 'duration'; moved (lines {repaired[:5]})"
        )
    if unknown_countries:
        names = ", ".join(sorted(unknown_countries)[:5])
        notes.append(f"{sum(unknown_countries.values())} unknown country name(s) dropped ({names})")
    return rows, episodes, notes


def _title(path: Path, line: int, record: dict[str, str], unknown: dict[str, int]) -> tuple[dict[str, Any], bool]:
    def fail(column: str, expected: str) -> DataFormatError:
        return DataFormatError(
            path, f"bad value {record.get(column, '')!r}", line=line, column=column, expected=expected
        )

    show_id = record["show_id"]
    if not show_id:
        raise fail("show_id", "a show id such as s1")
    kind = _TYPES.get(record["type"])
    if kind is None:
        raise fail("type", "'Movie' or 'TV Show'")
    rating, duration, fixed = record["rating"], record["duration"], False
    if not duration and _MINUTES.match(rating):
        duration, rating, fixed = rating, "", True
    duration_s: int | None = None
    seasons = 0
    if kind is TitleType.MOVIE:
        minutes = _MINUTES.match(duration)
        if duration and not minutes:
            raise fail("duration", "a movie runtime such as '90 min'")
        duration_s = int(minutes.group(1)) * 60 if minutes else None
    else:
        match = _SEASONS.match(duration)
        if not match or int(match.group(1)) < 1:
            raise fail("duration", "a season count such as '1 Season' or '2 Seasons'")
        seasons = int(match.group(1))
        duration_s = _episode_length(show_id)
    year = record["release_year"]
    if not year.isdigit() or not 1880 <= int(year) <= 2100:
        raise fail("release_year", "a four-digit year")
    countries: list[str] = []
    for name in _split(record.get("country", "")):
        code = country_code(name)
        if code is None:
            unknown[name] = unknown.get(name, 0) + 1
        elif code not in countries:
            countries.append(code)
    number = show_id[1:] if re.fullmatch(r"s\d+", show_id) else show_id
    row: dict[str, Any] = {
        "title_id": f"{TITLE_PREFIX}{number}",
        "type": kind.value,
        "title": record["title"],
        "synopsis": record.get("description", ""),
        "genres": _split(record["listed_in"]),
        "languages": [],
        "maturity_rating": rating,
        "maturity_level": int(maturity_level(rating)),
        "release_year": int(year),
        "date_added": _date(record["date_added"], fail),
        "duration_s": duration_s,
        "cast": _split(record.get("cast", "")),
        "director": _split(record.get("director", "")),
        "countries": countries,
        "video_qualities": ["SD", "HD"],
        "tags": [],
        "_seasons": seasons,
    }
    return row, fixed


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _date(text: str, fail: Any) -> datetime | None:
    if not text:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise fail("date_added", "a date such as '25-Sep-21' or 'September 25, 2021'")


def _rng(show_id: str) -> np.random.Generator:
    return np.random.default_rng([_EPISODE_SEED, zlib.crc32(show_id.encode())])


def _episode_length(show_id: str) -> int:
    """Typical episode runtime of a series: 25-60 minutes, fixed per show id."""
    return int(_rng(show_id).integers(25, 61)) * 60


def _episodes(row: dict[str, Any], seasons: int) -> list[dict[str, Any]]:
    rng = _rng(row["title_id"])
    typical = int(row["duration_s"])
    out = []
    for season in range(1, seasons + 1):
        count = int(rng.integers(6, 13))
        lengths = np.rint(typical * rng.uniform(0.9, 1.1, size=count)).astype(int)
        for number in range(1, count + 1):
            out.append(
                {
                    "episode_id": f"{row['title_id']}-s{season}e{number}",
                    "series_id": row["title_id"],
                    "season_number": season,
                    "episode_number": number,
                    "title": f"Episode {number}",
                    "duration_s": int(lengths[number - 1]),
                }
            )
    return out
