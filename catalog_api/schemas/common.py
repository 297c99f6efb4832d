"""Base classes of the public schemas and the boundary types every request field uses.

The boundary types are the one place where the API decides what a stored value
may look like, so nothing a client sends can later break the database, an
export or a refresh:

* ``SafeStr``: text without NUL characters (PostgreSQL refuses them in text
  columns) and without unpaired UTF-16 surrogates (they cannot be encoded as
  UTF-8, so neither stored nor echoed back in an error).
* ``Int32``: integers that fit a PostgreSQL ``integer`` column (and SQLite's 64 bits).
* ``StrictLevel``: a maturity level 0..3 given as a JSON integer (``false`` is not 0).
* ``UtcDateTime``: response timestamps always carry their offset.
* ``EventTime``: a timestamp inside the accepted window, ``[TIME_FLOOR, now + MAX_CLOCK_SKEW]``,
  normalised to UTC; a naive timestamp is read as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

#: The largest value of a PostgreSQL ``integer`` column.
INT32_MAX = 2**31 - 1
#: How far in the future a client clock may run (a heartbeat "from the future" beyond this is refused).
MAX_CLOCK_SKEW = timedelta(minutes=10)
#: No Marquee client recorded anything before this instant; older timestamps are refused.
TIME_FLOOR = datetime(2000, 1, 1, tzinfo=UTC)


def text_problem(value: str) -> str | None:
    """Why ``value`` may not be stored as text (NUL, unpaired surrogate), or None when it may."""
    if "\x00" in value:
        return "must not contain NUL characters (\\u0000)"
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        return "must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff); send valid Unicode"
    return None


def _safe_text(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def check_event_time(value: datetime, now: datetime | None = None) -> datetime:
    """``value`` in UTC if it lies in ``[TIME_FLOOR, now + MAX_CLOCK_SKEW]``; ``ValueError`` otherwise."""
    now = now or datetime.now(UTC)
    try:
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        utc = aware.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("timestamp is outside the representable range") from None
    if utc < TIME_FLOOR:
        raise ValueError(f"timestamp must not be before {TIME_FLOOR.isoformat()}")
    if utc > now + MAX_CLOCK_SKEW:
        limit = int(MAX_CLOCK_SKEW.total_seconds() // 60)
        raise ValueError(f"timestamp must not be more than {limit} minutes ahead of the server clock")
    return utc


def as_utc(value: datetime) -> datetime:
    """``value`` with its offset; SQLite hands back naive datetimes, and everything stored is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


SafeStr = Annotated[str, AfterValidator(_safe_text)]
#: A response timestamp: always with an offset, so it is the RFC 3339 ``date-time`` the document promises.
UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
StrictLevel = Annotated[StrictInt, Field(ge=0, le=3)]
EventTime = Annotated[datetime, AfterValidator(check_event_time)]


class RequestBody(BaseModel):
    """Request bodies refuse unknown fields (422), so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class PublicModel(BaseModel):
    """Response bodies, built from ORM rows or dataclasses."""

    model_config = ConfigDict(from_attributes=True)
