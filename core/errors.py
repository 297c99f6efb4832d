"""One exception hierarchy for the whole platform.

Entry points map these to exit codes (CLI) or HTTP status codes (API) in one
place; every message says what was wrong and how to fix it.
"""

from __future__ import annotations

from pathlib import Path


class MarqueeError(Exception):
    """Base class of every error Marquee raises on purpose."""

    http_status = 500


class InvalidInputError(MarqueeError, ValueError):
    """A caller passed a value outside what the function accepts."""

    http_status = 422


class NotFoundError(MarqueeError, LookupError):
    """An entity (profile, title, model, table) does not exist or is not visible."""

    http_status = 404


class ConflictError(MarqueeError):
    """The request conflicts with the current state (duplicate, overlap)."""

    http_status = 409


class ForbiddenError(MarqueeError):
    """The caller may not see this entity (maturity, licensing)."""

    http_status = 403


class ServiceUnavailableError(MarqueeError):
    """A dependency (model server, feature store, database) cannot be reached."""

    http_status = 503


class ConfigurationError(MarqueeError):
    """Settings or files describe something that cannot work."""

    http_status = 500


class SchemaError(InvalidInputError):
    """Data does not match a lake table's schema."""


class DataFormatError(InvalidInputError):
    """An input file is malformed; names the file, the line or column, and what was expected."""

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        line: int | None = None,
        column: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        self.expected = expected
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        message = f"{where}: {problem}"
        if expected:
            message += f" (expected {expected})"
        super().__init__(message)


class LakeFileError(MarqueeError):
    """A data file of a lake table cannot be read (corrupted, truncated, missing): names the file."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}; restore the file or rewrite the table")
