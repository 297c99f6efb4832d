"""Bad input: each error names the file, the line or column and what was expected; the lake is untouched."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from ingest_files import (
    CSV_MOVIES,
    CSV_RATINGS,
    ML1M_MOVIES,
    NETFLIX_HEADER,
    NETFLIX_ROWS,
    ml1m,
    ml100k,
    ml_csv,
    movietweetings,
    netflix,
)

from core.errors import DataFormatError, InvalidInputError
from core.lake import Lake
from features.ingest import load_dataset, read_dataset
from features.ingest.frames import DATASET_TABLES


def _snapshot(lake: Lake) -> dict[str, pd.DataFrame]:
    return {name: lake.read(name) for name in DATASET_TABLES}


def _assert_unchanged(lake: Lake, before: dict[str, pd.DataFrame]) -> None:
    for name, frame in before.items():
        pd.testing.assert_frame_equal(lake.read(name), frame, obj=name)


@pytest.fixture
def filled_lake(tmp_path: Path) -> tuple[Lake, dict[str, pd.DataFrame]]:
    lake = Lake(tmp_path / "lake")
    load_dataset("movielens", ml_csv(tmp_path / "good"), lake)
    return lake, _snapshot(lake)


def _expect(lake_and_before: tuple[Lake, dict[str, pd.DataFrame]], fmt: str, path: Path) -> DataFormatError:
    lake, before = lake_and_before
    with pytest.raises(DataFormatError) as caught:
        load_dataset(fmt, path, lake)
    _assert_unchanged(lake, before)
    return caught.value


def test_malformed_rating_value_names_line_and_column(tmp_path: Path, filled_lake) -> None:
    folder = ml_csv(tmp_path / "bad")
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,four,964981247\n")
    error = _expect(filled_lake, "movielens", folder)
    assert error.line == 3 and error.column == "rating"
    assert error.path.endswith("ratings.csv")
    assert "four" in str(error) and "expected a rating" in str(error)


def test_wrong_field_count_in_dat_file(tmp_path: Path, filled_lake) -> None:
    folder = ml1m(tmp_path / "bad")
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3\n")
    error = _expect(filled_lake, "movielens", folder)
    assert error.line == 2
    assert "3 field(s) instead of 4" in str(error)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("1::1193::5::978300760\n1::661::3::978302109::9\n", 2),  # one line with a surplus field
        ("1::1193::5::978300760::1\n1::661::3::978302109::9\n", 1),  # every line: still not 4 fields
    ],
)
def test_surplus_fields_are_not_dropped_silently(tmp_path: Path, filled_lake, text: str, line: int) -> None:
    folder = ml1m(tmp_path / "bad")
    (folder / "ratings.dat").write_text(text)
    error = _expect(filled_lake, "movielens", folder)
    assert error.line == line and "5 field(s) instead of 4" in str(error)


def test_surplus_field_in_csv(tmp_path: Path, filled_lake) -> None:
    folder = ml_csv(tmp_path / "bad")
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.0,964981247,x\n")
    error = _expect(filled_lake, "movielens", folder)
    assert error.line == 3 and "5 field(s) instead of 4" in str(error)


def test_empty_numeric_value(tmp_path: Path, filled_lake) -> None:
    folder = ml_csv(tmp_path / "bad")
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,,964982703\n")
    error = _expect(filled_lake, "movielens", folder)
    assert (error.line, error.column) == (2, "rating")


def test_line_numbers_count_blank_lines(tmp_path: Path, filled_lake) -> None:
    folder = movietweetings(tmp_path / "bad")
    (folder / "ratings.dat").write_text("1::0114709::7::1365029107\n\n\n1::0113497::11::1366576639\n")
    error = _expect(filled_lake, "movietweetings", folder)
    assert (error.line, error.column) == (4, "rating")


def test_out_of_range_rating(tmp_path: Path, filled_lake) -> None:
    folder = ml_csv(tmp_path / "bad")
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4,1\n1,3,7.5,2\n")
    error = _expect(filled_lake, "movielens", folder)
    assert (error.line, error.column) == (3, "rating")
    assert "out of range" in str(error)


def test_missing_column(tmp_path: Path, filled_lake) -> None:
    folder = ml_csv(tmp_path / "bad")
    (folder / "movies.csv").write_text(CSV_MOVIES.replace("genres", "categories", 1))
    error = _expect(filled_lake, "movielens", folder)
    assert error.column == "genres" and error.path.endswith("movies.csv")
    assert "missing column" in str(error)


def test_missing_companion_file(tmp_path: Path, filled_lake) -> None:
    folder = ml1m(tmp_path / "bad")
    (folder / "movies.dat").unlink()
    error = _expect(filled_lake, "movielens", folder)
    assert error.path.endswith("movies.dat") and "file not found" in str(error)


def test_wrong_path(tmp_path: Path, filled_lake) -> None:
    error = _expect(filled_lake, "movielens", tmp_path / "nowhere")
    assert "no such file or folder" in str(error) and "ml-100k" in str(error)


def test_folder_without_dataset_files(tmp_path: Path, filled_lake) -> None:
    (tmp_path / "empty").mkdir()
    error = _expect(filled_lake, "movietweetings", tmp_path / "empty")
    assert "ratings.dat" in str(error)


def test_duplicate_movie_id(tmp_path: Path, filled_lake) -> None:
    folder = ml1m(tmp_path / "bad")
    (folder / "movies.dat").write_text(ML1M_MOVIES + "661::Again (1996)::Drama\n", encoding="latin-1")
    error = _expect(filled_lake, "movielens", folder)
    assert error.line == 3 and "listed twice" in str(error)


def test_bad_imdb_id(tmp_path: Path, filled_lake) -> None:
    folder = movietweetings(tmp_path / "bad")
    (folder / "ratings.dat").write_text("1::0114709::7::1365029107\n1::tt01x::7::1365029107\n")
    error = _expect(filled_lake, "movietweetings", folder)
    assert (error.line, error.column) == (2, "imdb_id")


def test_invalid_utf8(tmp_path: Path, filled_lake) -> None:
    folder = ml_csv(tmp_path / "bad")
    (folder / "movies.csv").write_bytes(b"movieId,title,genres\n1,Toy Story (1995),Comedy\n3,Caf\xe9 (1995),Drama\n")
    error = _expect(filled_lake, "movielens", folder)
    assert error.line == 3 and "utf-8" in str(error)


@pytest.mark.parametrize(
    ("row", "column", "expected"),
    [
        ("s9,Film,X,,,,,2020,PG,90 min,Dramas,d\n", "type", "'Movie' or 'TV Show'"),
        ("s9,Movie,X,,,,yesterday,2020,PG,90 min,Dramas,d\n", "date_added", "25-Sep-21"),
        ("s9,TV Show,X,,,,,2020,PG,90 min,Dramas,d\n", "duration", "Seasons"),
        ("s9,Movie,X,,,,,twenty,PG,90 min,Dramas,d\n", "release_year", "four-digit year"),
    ],
)
def test_netflix_bad_rows(tmp_path: Path, filled_lake, row: str, column: str, expected: str) -> None:
    path = tmp_path / "netflix_titles.csv"
    path.write_text(NETFLIX_HEADER + NETFLIX_ROWS + row)
    error = _expect(filled_lake, "netflix", path)
    assert error.column == column and error.line == 6
    assert expected in str(error)


def test_netflix_unquoted_comma_and_missing_column(tmp_path: Path, filled_lake) -> None:
    path = tmp_path / "netflix_titles.csv"
    path.write_text(NETFLIX_HEADER + "s9,Movie,X, with comma,,,,,2020,PG,90 min,Dramas,d\n")
    error = _expect(filled_lake, "netflix", path)
    assert error.line == 2 and "13 field(s) instead of 12" in str(error)
    path.write_text(NETFLIX_HEADER.replace("listed_in", "genres") + NETFLIX_ROWS)
    error = _expect(filled_lake, "netflix", path)
    assert (error.line, error.column) == (1, "listed_in")


def test_netflix_duplicate_show_id(tmp_path: Path, filled_lake) -> None:
    path = netflix(tmp_path)
    path.write_text(NETFLIX_HEADER + NETFLIX_ROWS + NETFLIX_ROWS.splitlines(keepends=True)[0])
    error = _expect(filled_lake, "netflix", path)
    assert error.line == 6 and "line 2" in str(error)


def test_unknown_format_lists_the_valid_ones(tmp_path: Path, filled_lake) -> None:
    lake, before = filled_lake
    with pytest.raises(InvalidInputError) as caught:
        load_dataset("imdb", tmp_path, lake)
    assert "movielens, movietweetings, netflix, synthetic" in str(caught.value)
    _assert_unchanged(lake, before)


@pytest.mark.parametrize(
    ("layout", "file", "text"),
    [
        ("ml-100k", "u.data", ""),
        ("ml-1m", "ratings.dat", "\n\n"),
        ("ml-latest", "ratings.csv", "userId,movieId,rating,timestamp\n"),
        ("movietweetings", "ratings.dat", ""),
    ],
)
def test_a_ratings_file_without_ratings(tmp_path: Path, filled_lake, layout: str, file: str, text: str) -> None:
    make = {"ml-100k": ml100k, "ml-1m": ml1m, "ml-latest": ml_csv, "movietweetings": movietweetings}[layout]
    folder = make(tmp_path / layout)
    (folder / file).write_text(text)
    error = _expect(filled_lake, "movietweetings" if layout == "movietweetings" else "movielens", folder)
    assert error.path.endswith(file) and "has no data lines" in str(error)


def test_movietweetings_read_as_movielens_says_which_format_it_is(tmp_path: Path, filled_lake) -> None:
    error = _expect(filled_lake, "movielens", movietweetings(tmp_path / "mt"))
    assert error.line == 1 and "is MovieTweetings: use the movietweetings format" in str(error)


def test_movielens_read_as_movietweetings_is_refused(tmp_path: Path, filled_lake) -> None:
    error = _expect(filled_lake, "movietweetings", ml1m(tmp_path / "ml-1m"))
    assert error.path.endswith("ratings.dat") and "looks like MovieLens, not MovieTweetings" in str(error)


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    folder = ml_csv(tmp_path / "ml", tags=False)
    (folder / "ratings.csv").write_text("\ufeff" + CSV_RATINGS, encoding="utf-8")
    assert read_dataset("movielens", folder).counts()["watch_events"] == 3
    ml1m_folder = ml1m(tmp_path / "ml-1m")
    (ml1m_folder / "ratings.dat").write_text("\ufeff1::1193::5::978300760\n", encoding="utf-8")
    assert list(read_dataset("movielens", ml1m_folder).watch_events["event_id"]) == ["ml-1-1193"]
