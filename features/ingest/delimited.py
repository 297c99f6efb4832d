"""Fast, strict reading of delimited text files with errors that point at the bad line.

Loaders read with pandas' C parser (fast enough for ml-25m). When the fast
path fails, a slow line-by-line scan of the same file finds the first bad line
and raises ``DataFormatError`` naming the file, the line (1-based, counting a
header line), the column and what was expected, so a user can fix the file.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from core.errors import DataFormatError

logger = logging.getLogger(__name__)

#: Stands in for a multi-character separator (``::``) so pandas' C parser can read the file.
_UNIT_SEPARATOR = "\x1f"

Kind = Literal["int", "float", "str"]

#: Name of a column that only a line with too many fields fills.
_EXTRA = "__surplus__"


@dataclass(frozen=True)
class Column:
    """One column a loader needs: its name, type and a human description of valid values."""

    name: str
    kind: Kind
    expected: str


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a readable file, else raise ``DataFormatError`` saying what was expected."""
    if not path.exists():
        raise DataFormatError(path, "file not found", expected=what)
    if not path.is_file():
        raise DataFormatError(path, "is not a file", expected=what)
    return path


def read_delimited(
    path: Path,
    columns: Sequence[Column],
    *,
    sep: str,
    header: bool,
    encoding: str = "utf-8",
    field_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read the given ``columns`` of a delimited file, strictly typed.

    Args:
        path: the file.
        columns: the columns to return (a subset of the file's fields).
        sep: field separator; ``","`` files honour CSV quoting, others are read unquoted.
        header: whether the first line names the fields (CSV layouts) or not (``.dat`` layouts).
        encoding: text encoding of the file (MovieLens ``.dat``/``u.item`` files are latin-1).
        field_names: every field of a header-less file, in order (required when ``header`` is False).

    Returns:
        A DataFrame with exactly ``columns``: ints as int64, floats as float64, strings as object.

    Raises:
        DataFormatError: missing file, missing column, wrong field count, bad value or encoding.
    """
    if header:
        names = _header(path, sep, encoding)
        for column in columns:
            if column.name not in names:
                raise DataFormatError(
                    path,
                    f"missing column {column.name!r}",
                    line=1,
                    column=column.name,
                    expected=f"a header with {names_of(columns)}",
                )
    else:
        if field_names is None:
            raise ValueError("field_names is required for a file without a header")
        names = list(field_names)
    dtypes = {name: "object" for name in [*names, _EXTRA]}
    dtypes.update({c.name: {"int": "int64", "float": "float64", "str": "object"}[c.kind] for c in columns})
    quoting = csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE
    try:
        source: Path | io.StringIO = path
        pandas_sep = sep
        if len(sep) > 1:
            source = io.StringIO(path.read_text(encoding=encoding).replace(sep, _UNIT_SEPARATOR))
            pandas_sep = _UNIT_SEPARATOR
        frame = pd.read_csv(
            source,
            sep=pandas_sep,
            header=None,
            skiprows=1 if header else 0,
            # One more name than fields: a line with a surplus field fills it instead of
            # being silently truncated (pandas drops surplus fields of selected columns).
            names=[*names, _EXTRA],
            dtype=dtypes,
            encoding=encoding,
            quoting=quoting,
            keep_default_na=False,
            na_values={c.name: [""] for c in columns if c.kind != "str"},
            engine="c",
        )
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, encoding, exc) from None
    except (ValueError, pd.errors.ParserError) as exc:
        logger.debug("fast parse of %s failed (%s); scanning for the bad line", path, exc)
        _scan(path, columns, sep=sep, header=header, encoding=encoding, field_names=names)
        raise DataFormatError(path, f"cannot be parsed ({exc})", expected=f"fields {names_of(columns)}") from None
    surplus = frame[_EXTRA].fillna("").astype(bool).to_numpy()
    if surplus.any():
        _scan(path, columns, sep=sep, header=header, encoding=encoding, field_names=names)
        row = int(surplus.argmax())
        raise DataFormatError(
            path,
            f"more than {len(names)} fields",
            line=line_of(path, row, sep=sep, header=header, encoding=encoding),
            expected=f"{len(names)} fields separated by {sep!r}: {', '.join(names)}",
        )
    _check_complete(path, frame, columns, sep=sep, header=header, encoding=encoding)
    return frame[[c.name for c in columns]]


def require_rows(frame: pd.DataFrame, path: Path, expected: str) -> pd.DataFrame:
    """Return ``frame``, or raise ``DataFormatError`` naming ``path`` when it holds no data line."""
    if frame.empty:
        raise DataFormatError(path, "has no data lines", expected=expected)
    return frame


def line_of(path: Path, row: int, *, sep: str, header: bool, encoding: str = "utf-8") -> int:
    """The 1-based line number of data row ``row`` (0-based, as pandas numbers it) of ``path``.

    Blank lines (which pandas skips) and quoted line breaks are counted, so the number
    is the one an editor shows. Only called on the error path: it reads the file again.
    """
    data_rows = (number for number, _ in _rows(path, sep, encoding))
    if header:
        next(data_rows, None)
    for index, number in enumerate(data_rows):
        if index == row:
            return number
    return row + (2 if header else 1)


def check_range(
    frame: pd.DataFrame,
    column: str,
    low: float,
    high: float,
    *,
    path: Path,
    sep: str,
    header: bool,
    expected: str,
    encoding: str = "utf-8",
) -> None:
    """Raise ``DataFormatError`` at the first row whose ``column`` lies outside ``[low, high]``."""
    bad = ((frame[column] < low) | (frame[column] > high)).to_numpy()
    if bad.any():
        row = int(bad.argmax())
        raise DataFormatError(
            path,
            f"{column} {frame[column].iloc[row]} is out of range",
            line=line_of(path, row, sep=sep, header=header, encoding=encoding),
            column=column,
            expected=expected,
        )


def names_of(columns: Sequence[Column]) -> str:
    """``'a', 'b', 'c'`` for error messages."""
    return ", ".join(repr(c.name) for c in columns)


def _header(path: Path, sep: str, encoding: str) -> list[str]:
    try:
        with path.open(encoding=encoding, newline="") as handle:
            first = handle.readline()
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, encoding, exc) from None
    if not first.strip():
        raise DataFormatError(path, "the file is empty or has no header line", line=1, expected="a header line")
    # A byte-order mark (files saved by spreadsheet programs) is not part of the first name.
    return [name.strip() for name in next(csv.reader([first.removeprefix("\ufeff")], delimiter=sep))]


def _check_complete(
    path: Path, frame: pd.DataFrame, columns: Sequence[Column], *, sep: str, header: bool, encoding: str
) -> None:
    """Numeric columns may not be empty (pandas reads an empty float as NaN without complaint)."""
    for column in columns:
        if column.kind == "str":
            continue
        missing = frame[column.name].isna().to_numpy()
        if missing.any():
            row = int(missing.argmax())
            raise DataFormatError(
                path,
                "empty value",
                line=line_of(path, row, sep=sep, header=header, encoding=encoding),
                column=column.name,
                expected=column.expected,
            )


def _encoding_error(path: Path, encoding: str, exc: UnicodeDecodeError) -> DataFormatError:
    """The error for undecodable bytes, with the line they are on (pandas reports only a chunk offset)."""
    line = None
    try:
        path.read_bytes().decode(encoding)
    except UnicodeDecodeError as located:
        line = located.object.count(b"\n", 0, located.start) + 1
    except OSError:
        pass
    return DataFormatError(
        path, f"is not valid {encoding} text ({exc.reason})", line=line, expected=f"{encoding}-encoded text"
    )


def _rows(path: Path, sep: str, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, fields) of every non-blank line."""
    with path.open(encoding=encoding, newline="") as handle:
        if sep == ",":
            reader = csv.reader(handle)
            start = 1
            for fields in reader:
                if fields:
                    yield start, fields
                start = reader.line_num + 1
        else:
            for number, line in enumerate(handle, start=1):
                stripped = line.rstrip("\r\n")
                if stripped:
                    yield number, stripped.split(sep)


def _scan(
    path: Path, columns: Sequence[Column], *, sep: str, header: bool, encoding: str, field_names: Sequence[str]
) -> None:
    """Raise ``DataFormatError`` at the first line the fast parser could not read."""
    positions = {name: i for i, name in enumerate(field_names)}
    for number, fields in _rows(path, sep, encoding):
        if header and number == 1:
            continue
        if len(fields) != len(field_names):
            raise DataFormatError(
                path,
                f"{len(fields)} field(s) instead of {len(field_names)}",
                line=number,
                expected=f"{len(field_names)} fields separated by {sep!r}: {', '.join(field_names)}",
            )
        for column in columns:
            value = fields[positions[column.name]]
            if not _valid(value, column.kind):
                raise DataFormatError(
                    path, f"bad value {value!r}", line=number, column=column.name, expected=column.expected
                )


def _valid(value: str, kind: Kind) -> bool:
    if kind == "str":
        return True
    try:
        number = int(value) if kind == "int" else float(value)
    except ValueError:
        return False
    return math.isfinite(number)
