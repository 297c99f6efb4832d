"""MovieLens (GroupLens) datasets into lake frames.

Layouts, detected from the files in the folder (a file inside it works too):

* ``ml-100k``: ``u.data`` (``user<TAB>item<TAB>rating<TAB>timestamp``) and
  ``u.item`` (pipe-separated, latin-1, 5 fields then 19 genre flags);
* ``ml-1m`` (and ``ml-10m``): ``ratings.dat`` (``user::movie::rating::timestamp``)
  and ``movies.dat`` (``movie::title::Genre|Genre``), latin-1 or UTF-8;
* ``ml-latest-small`` / ``ml-latest`` / ``ml-25m``: ``ratings.csv``,
  ``movies.csv`` and optionally ``tags.csv``, with headers.

Ids: movie ``1`` -> title ``ml1``; user ``1`` -> profile ``mlu1`` in account
``mla1``; rating events are ``ml-<user>-<movie>``. Genres become lists
(``(no genres listed)`` and ml-100k's ``unknown`` become ``[]``; ``Children's``
is spelled ``Children`` as in the newer layouts); tags are lower-cased,
stripped and de-duplicated per title. MovieLens has no maturity rating, so
every title gets ``maturity_level(None)`` = ADULTS (kids profiles never see an
unrated title). Stars become watch progress as described in
``features.ingest.ratings``.
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

TITLE_PREFIX = "ml"
PROFILE_PREFIX = "mlu"
ACCOUNT_PREFIX = "mla"
EVENT_PREFIX = "ml"
MAX_RATING = 5.0
SPEC = RatingSource("MovieLens", TITLE_PREFIX, PROFILE_PREFIX, ACCOUNT_PREFIX, EVENT_PREFIX, MAX_RATING)

#: ml-100k's genre flags in ``u.item`` order (from its ``u.genre``).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

_EXPECTED_LAYOUT = (
    "a MovieLens folder: u.data + u.item (ml-100k), ratings.dat + movies.dat (ml-1m, ml-10m) "
    "or ratings.csv + movies.csv [+ tags.csv] (ml-latest-small, ml-25m)"
)
_USER = Column("user", "int", "an integer user id")
_ITEM = Column("item", "int", "an integer movie id")
_RATING = Column("rating", "float", "a rating between 0.5 and 5")
_TIME = Column("timestamp", "int", "a unix timestamp in seconds")


def detect_layout(path: Path) -> tuple[str, Path]:
    """Which MovieLens layout ``path`` holds, and its folder.

    Returns:
        ``("ml-100k" | "ml-1m" | "<folder name or ml-latest>", folder)``.

    Raises:
        DataFormatError: the path does not exist or holds no MovieLens files.
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(path, "no such file or folder", expected=_EXPECTED_LAYOUT)
    folder = path if path.is_dir() else path.parent
    if (folder / "u.data").exists():
        return "ml-100k", folder
    if (folder / "ratings.dat").exists():
        return "ml-1m", folder
    if (folder / "ratings.csv").exists():
        name = folder.name.lower()
        return (name if name.startswith("ml-") else "ml-latest"), folder
    raise DataFormatError(folder, "no MovieLens ratings file found", expected=_EXPECTED_LAYOUT)


def read_movielens(path: str | Path) -> DatasetFrames:
    """Parse a MovieLens folder into lake frames without touching any lake.

    Raises:
        DataFormatError: a missing file or column, or a malformed line (named with its line number).
    """
    layout, folder = detect_layout(Path(path))
    if layout == "ml-100k":
        ratings, titles = _read_100k(folder)
    elif layout == "ml-1m":
        ratings, titles = _read_1m(folder)
    else:
        ratings, titles = _read_csv_layout(folder)
    return _frames(f"movielens:{layout}", ratings, titles)


def load_movielens(path: str | Path, lake: Lake) -> IngestReport:
    """Parse a MovieLens folder and replace the lake's dataset tables with it (nothing is written on error)."""
    started = time.perf_counter()
    frames = read_movielens(path)
    return write_frames(lake, frames, started=started, path=str(path))


def _read_100k(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = require_file(folder / "u.data", "ml-100k ratings u.data")
    item = require_file(folder / "u.item", "ml-100k movies u.item")
    ratings = read_delimited(
        data,
        [_USER, _ITEM, _RATING, _TIME],
        sep="\t",
        header=False,
        field_names=["user", "item", "rating", "timestamp"],
    )
    require_rows(ratings, data, "one rating per line: user<TAB>item<TAB>rating<TAB>timestamp")
    check_range(ratings, "rating", 0.0, MAX_RATING, path=data, sep="\t", header=False, expected=_RATING.expected)
    flags = [f"g{i}" for i in range(len(ML100K_GENRES))]
    fields = ["item", "title", "release_date", "video_release_date", "imdb_url", *flags]
    columns = [
        _ITEM,
        Column("title", "str", "a movie title"),
        *(Column(f, "int", "a genre flag 0 or 1") for f in flags),
    ]
    movies = read_delimited(item, columns, sep="|", header=False, encoding=text_encoding(item), field_names=fields)
    _check_unique_items(movies, path=item, sep="|", header=False, encoding=text_encoding(item))
    matrix = movies[flags].to_numpy() > 0
    genres = pd.Series(
        [[ML100K_GENRES[j] for j in row.nonzero()[0] if j > 0] for row in matrix], index=movies.index, dtype=object
    )
    return ratings, pd.DataFrame({"item": movies["item"], "title": movies["title"], "genres": genres})


def _read_1m(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    ratings_file = require_file(folder / "ratings.dat", "ml-1m ratings.dat")
    movies_file = require_file(folder / "movies.dat", "ml-1m movies.dat next to ratings.dat")
    ratings_encoding = text_encoding(ratings_file)
    ratings = read_delimited(
        ratings_file,
        [_USER, _ITEM, _RATING, _TIME],
        sep="::",
        header=False,
        encoding=ratings_encoding,
        field_names=["user", "item", "rating", "timestamp"],
    )
    require_rows(ratings, ratings_file, "one rating per line: user::movie::rating::timestamp")
    movies = read_delimited(
        movies_file,
        [_ITEM, Column("title", "str", "a movie title"), Column("genres", "str", "genres separated by '|'")],
        sep="::",
        header=False,
        encoding=text_encoding(movies_file),
        field_names=["item", "title", "genres"],
    )
    check_range(
        ratings,
        "rating",
        0.0,
        MAX_RATING,
        path=ratings_file,
        sep="::",
        header=False,
        # The one other '::' layout is MovieTweetings (0-10 stars): say so rather than only "out of range".
        expected=f"{_RATING.expected}; a ratings.dat rated 0-10 is MovieTweetings: use the movietweetings format",
        encoding=ratings_encoding,
    )
    _check_unique_items(movies, path=movies_file, sep="::", header=False, encoding=text_encoding(movies_file))
    movies["genres"] = _genres(movies["genres"])
    return ratings, movies


def _read_csv_layout(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    ratings_file = require_file(folder / "ratings.csv", "MovieLens ratings.csv")
    movies_file = require_file(folder / "movies.csv", "MovieLens movies.csv next to ratings.csv")
    ratings = read_delimited(
        ratings_file,
        [
            Column("userId", "int", _USER.expected),
            Column("movieId", "int", _ITEM.expected),
            Column("rating", "float", _RATING.expected),
            Column("timestamp", "int", _TIME.expected),
        ],
        sep=",",
        header=True,
    ).rename(columns={"userId": "user", "movieId": "item"})
    require_rows(ratings, ratings_file, "one rating per line after the header: userId,movieId,rating,timestamp")
    movies = read_delimited(
        movies_file,
        [
            Column("movieId", "int", _ITEM.expected),
            Column("title", "str", "a movie title"),
            Column("genres", "str", "genres separated by '|'"),
        ],
        sep=",",
        header=True,
    ).rename(columns={"movieId": "item"})
    check_range(ratings, "rating", 0.0, MAX_RATING, path=ratings_file, sep=",", header=True, expected=_RATING.expected)
    _check_unique_items(movies, path=movies_file, sep=",", header=True)
    movies["genres"] = _genres(movies["genres"])
    tags_file = folder / "tags.csv"
    if tags_file.exists():
        tags = read_delimited(
            tags_file,
            [Column("movieId", "int", _ITEM.expected), Column("tag", "str", "a free-text tag")],
            sep=",",
            header=True,
        )
        cleaned = tags["tag"].fillna("").astype(str).str.strip().str.lower()
        tags = pd.DataFrame({"item": tags["movieId"], "tag": cleaned})
        tags = tags[tags["tag"] != ""].drop_duplicates()
        per_item = tags.groupby("item")["tag"].agg(lambda values: sorted(values))
        movies["tags"] = movies["item"].map(per_item).map(lambda v: v if isinstance(v, list) else [])
    return ratings, movies


def _genres(raw: pd.Series) -> pd.Series:
    lists = genre_lists(raw)
    return lists.map(lambda genres: ["Children" if g == "Children's" else g for g in genres])


def _check_unique_items(movies: pd.DataFrame, *, path: Path, sep: str, header: bool, encoding: str = "utf-8") -> None:
    duplicated = movies["item"].duplicated().to_numpy()
    if duplicated.any():
        row = int(duplicated.argmax())
        raise DataFormatError(
            path,
            f"movie id {movies['item'].iloc[row]} is listed twice",
            line=line_of(path, row, sep=sep, header=header, encoding=encoding),
            expected="each movie id once",
        )


def _frames(source: str, ratings: pd.DataFrame, movies: pd.DataFrame) -> DatasetFrames:
    frames = rating_frames(source=source, spec=SPEC, ratings=ratings, catalog=movies)
    logger.debug("%s: %s", source, frames.counts())
    return frames
