"""MovieTweetings (``ratings.dat`` + ``movies.dat``) into lake frames.

Files: ``ratings.dat`` is ``user::imdb_id::rating::unix_ts`` with ratings 0-10;
``movies.dat`` is ``imdb_id::Title (Year)::Genre|Genre`` (UTF-8; genres may be
empty). Ids: IMDb ``0114709`` -> title ``tt0114709`` (seven digits, zero
padded, so the ids join with MovieLens ``links.csv`` and other IMDb-keyed
data); user ``1`` -> profile ``mtu1`` in account ``mta1``; events are
``mt-<user>-<imdb_id>``. Stars become watch progress (``rating / 10``) as
described in ``features.ingest.ratings``; maturity is unknown, hence ADULTS.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from core.errors import DataFormatError
from core.lake import Lake
from features.ingest.delimited import Column, check_range, line_of, read_delimited, require_file, require_rows
from features.ingest.frames import DatasetFrames, IngestReport, write_frames
from features.ingest.ratings import RatingSource, genre_lists, rating_frames, text_encoding

logger = logging.getLogger(__name__)

TITLE_PREFIX = "tt"
PROFILE_PREFIX = "mtu"
ACCOUNT_PREFIX = "mta"
EVENT_PREFIX = "mt"
MAX_RATING = 10.0
SPEC = RatingSource("MovieTweetings", TITLE_PREFIX, PROFILE_PREFIX, ACCOUNT_PREFIX, EVENT_PREFIX, MAX_RATING)

_EXPECTED_LAYOUT = "a MovieTweetings folder with ratings.dat (user::imdb_id::rating::timestamp) and movies.dat"
_IMDB = Column("imdb_id", "str", "a numeric IMDb id such as 0114709")


def read_movietweetings(path: str | Path) -> DatasetFrames:
    """Parse a MovieTweetings folder (or a file inside it) into lake frames; no lake is touched.

    Raises:
        DataFormatError: a missing file, a malformed line (with its number) or a non-numeric IMDb id.
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(path, "no such file or folder", expected=_EXPECTED_LAYOUT)
    folder = path if path.is_dir() else path.parent
    ratings_file = require_file(folder / "ratings.dat", _EXPECTED_LAYOUT)
    movies_file = require_file(folder / "movies.dat", "MovieTweetings movies.dat next to ratings.dat")
    ratings_encoding, movies_encoding = text_encoding(ratings_file), text_encoding(movies_file)
    ratings = read_delimited(
        ratings_file,
        [
            Column("user", "int", "an integer user id"),
            _IMDB,
            Column("rating", "float", "a rating between 0 and 10"),
            Column("timestamp", "int", "a unix timestamp in seconds"),
        ],
        sep="::",
        header=False,
        encoding=ratings_encoding,
        field_names=["user", "imdb_id", "rating", "timestamp"],
    )
    require_rows(ratings, ratings_file, "one rating per line: user::imdb_id::rating::timestamp")
    check_range(
        ratings,
        "rating",
        0.0,
        MAX_RATING,
        path=ratings_file,
        sep="::",
        header=False,
        expected="a rating between 0 and 10",
        encoding=ratings_encoding,
    )
    _reject_movielens(ratings, ratings_file)
    ratings["imdb_id"] = _imdb_ids(ratings["imdb_id"], ratings_file, ratings_encoding)
    movies = read_delimited(
        movies_file,
        [_IMDB, Column("title", "str", "a title"), Column("genres", "str", "genres separated by '|'")],
        sep="::",
        header=False,
        encoding=movies_encoding,
        field_names=["imdb_id", "title", "genres"],
    )
    movies["imdb_id"] = _imdb_ids(movies["imdb_id"], movies_file, movies_encoding)
    duplicated = movies["imdb_id"].duplicated().to_numpy()
    if duplicated.any():
        row = int(duplicated.argmax())
        raise DataFormatError(
            movies_file,
            f"IMDb id {movies['imdb_id'].iloc[row]} is listed twice",
            line=line_of(movies_file, row, sep="::", header=False, encoding=movies_encoding),
            expected="each id once",
        )
    catalog = pd.DataFrame(
        {"item": movies["imdb_id"], "title": movies["title"], "genres": genre_lists(movies["genres"].fillna(""))}
    )
    ratings = ratings.rename(columns={"imdb_id": "item"})
    return rating_frames(source="movietweetings", spec=SPEC, ratings=ratings, catalog=catalog)


def load_movietweetings(path: str | Path, lake: Lake) -> IngestReport:
    """Parse MovieTweetings and replace the lake's dataset tables with it (nothing is written on error)."""
    started = time.perf_counter()
    frames = read_movietweetings(path)
    return write_frames(lake, frames, started=started, path=str(path))


def _reject_movielens(ratings: pd.DataFrame, path: Path) -> None:
    """MovieLens ml-1m/ml-10m share the ``::`` layout; read as MovieTweetings they would load as nonsense.

    MovieTweetings writes IMDb ids with at least seven digits and rates 0-10; a file whose
    ids all have fewer digits and whose ratings never pass 5 is MovieLens.
    """
    if ratings.empty or ratings["rating"].max() > 5:
        return
    ids = ratings["imdb_id"].astype(str).str.strip().str.removeprefix("tt")
    if (ids.str.len() < 7).all():
        raise DataFormatError(
            path,
            f"looks like MovieLens, not MovieTweetings: movie ids such as {ids.iloc[0]!r} are not 7-digit IMDb ids "
            "and no rating is above 5",
            expected="MovieTweetings ratings (user::imdb_id::rating::timestamp, ratings 0-10); "
            "for a MovieLens ml-1m or ml-10m folder use the movielens format",
        )


def _imdb_ids(raw: pd.Series, path: Path, encoding: str) -> pd.Series:
    """Strip, drop a ``tt`` prefix, require digits and zero-pad to seven."""
    ids = raw.fillna("").astype(str).str.strip().str.removeprefix("tt")
    bad = ~ids.str.fullmatch(r"\d+").to_numpy()
    if bad.any():
        row = int(bad.argmax())
        raise DataFormatError(
            path,
            f"bad IMDb id {raw.iloc[row]!r}",
            line=line_of(path, row, sep="::", header=False, encoding=encoding),
            column="imdb_id",
            expected=_IMDB.expected,
        )
    return ids.str.zfill(7)
