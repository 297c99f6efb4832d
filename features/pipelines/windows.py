"""Vectorised as-of aggregation: sums of past values per entity at query times.

Every feature here is "an aggregate of an entity's plays strictly before T".
Plays are sorted by (entity code, time) and encoded as one int64 key
``code * span + second``; a query (code, T) then becomes one ``searchsorted``
over all entities at once, and a window sum is a difference of a cumulative
sum. No Python loop runs per entity, so a million plays take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.timestamps import utc_index

DAY_S = 86_400

#: Windows of the counted features, in days.
WINDOWS_DAYS = (1, 7, 30)


def to_seconds(ts: pd.Series | pd.DatetimeIndex | npt.NDArray[np.datetime64]) -> npt.NDArray[np.int64]:
    """UTC timestamps → int64 seconds since the epoch (floor)."""
    index = utc_index(ts).as_unit("ns")
    return np.floor_divide(index.asi8, 1_000_000_000).astype(np.int64)


def from_seconds(seconds: npt.NDArray[np.int64]) -> pd.DatetimeIndex:
    """Int64 seconds since the epoch → UTC timestamps."""
    return pd.to_datetime(np.asarray(seconds, dtype=np.int64), unit="s", utc=True)


@dataclass
class Timeline:
    """Values of many entities' events, sorted and indexed for as-of queries.

    Attributes:
        codes: shape (n,) int64, the entity code of each event, ascending.
        seconds: shape (n,) int64, event time in seconds, ascending within a code.
        span: key stride; larger than any time queried.
    """

    codes: npt.NDArray[np.int64]
    seconds: npt.NDArray[np.int64]
    span: int
    keys: npt.NDArray[np.int64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.keys = self.codes * np.int64(self.span) + self.seconds

    @classmethod
    def build(
        cls, codes: npt.NDArray[np.int64], seconds: npt.NDArray[np.int64], span: int
    ) -> tuple[Timeline, npt.NDArray[np.intp]]:
        """Sort events by (code, time); return the timeline and the sorting permutation.

        Plays usually arrive sorted already (by profile, then time), so that case
        costs one pass instead of a sort.
        """
        codes = np.asarray(codes, dtype=np.int64)
        seconds = np.asarray(seconds, dtype=np.int64)
        keys = codes * np.int64(span) + seconds
        if len(keys) < 2 or bool(np.all(keys[1:] >= keys[:-1])):
            order = np.arange(len(keys), dtype=np.intp)
            return cls(codes, seconds, span), order
        order = np.argsort(keys, kind="stable")
        return cls(codes[order], seconds[order], span), order

    def query(self, codes: npt.NDArray[np.int64], seconds: npt.NDArray[np.int64]) -> Query:
        """Queries (code, T) against this timeline, with their search results cached."""
        return Query(self, np.asarray(codes, dtype=np.int64), np.asarray(seconds, dtype=np.int64))

    def before(self, codes: npt.NDArray[np.int64], seconds: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
        """Index of the first event of ``codes`` at or after ``seconds`` (= events strictly before, globally)."""
        clipped = np.clip(seconds, 0, self.span - 1)
        return np.searchsorted(self.keys, codes * np.int64(self.span) + clipped, side="left")

    def start(self, codes: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
        """Index of the first event of each code."""
        return np.searchsorted(self.keys, codes * np.int64(self.span), side="left")

    def window_count(
        self, codes: npt.NDArray[np.int64], seconds: npt.NDArray[np.int64], window_s: int | None
    ) -> npt.NDArray[np.int64]:
        """Events of each code in ``[T - window, T)``; ``window_s=None`` counts all before T."""
        return self.query(codes, seconds).count(window_s)

    def window_sum(
        self,
        cumsum: npt.NDArray[np.float64],
        codes: npt.NDArray[np.int64],
        seconds: npt.NDArray[np.int64],
        window_s: int | None,
    ) -> npt.NDArray[np.float64]:
        """Sum of a value over ``[T - window, T)``; ``cumsum`` comes from :func:`prefix_sum`."""
        return self.query(codes, seconds).sum(cumsum, window_s)

    def last_before(self, codes: npt.NDArray[np.int64], seconds: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Time (seconds) of each code's last event strictly before T; NaN when none."""
        return self.query(codes, seconds).last()


@dataclass
class Query:
    """Many (code, T) queries against one :class:`Timeline`.

    Several features share the same bounds (plays, minutes and completions over
    the same 7-day window), so each ``searchsorted`` runs once and is reused.
    """

    line: Timeline
    codes: npt.NDArray[np.int64]
    seconds: npt.NDArray[np.int64]
    _bounds: dict[int | None, npt.NDArray[np.intp]] = field(default_factory=dict, repr=False)

    def bound(self, window_s: int | None) -> npt.NDArray[np.intp]:
        """Index of the first event in ``[T - window, ...)`` (the code's first event when None)."""
        if window_s not in self._bounds:
            if window_s is None:
                self._bounds[None] = self.line.start(self.codes)
            else:
                self._bounds[window_s] = self.line.before(self.codes, self.seconds - window_s)
        return self._bounds[window_s]

    def count(self, window_s: int | None) -> npt.NDArray[np.int64]:
        """Events in ``[T - window, T)`` (all before T when None)."""
        return (self.bound(0) - self.bound(window_s)).astype(np.int64)

    def sum(self, cumsum: npt.NDArray[np.float64], window_s: int | None) -> npt.NDArray[np.float64]:
        """Sum over ``[T - window, T)`` of the values whose :func:`prefix_sum` is ``cumsum``."""
        return cumsum[self.bound(0)] - cumsum[self.bound(window_s)]

    def last(self) -> npt.NDArray[np.float64]:
        """Time (seconds) of the code's last event strictly before T; NaN when none."""
        hi = self.bound(0)
        has = hi > self.bound(None)
        out = np.full(len(self.codes), np.nan)
        out[has] = self.line.seconds[hi[has] - 1]
        return out


def prefix_sum(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``[0, v0, v0+v1, ...]``: the cumulative sum window sums subtract."""
    out = np.zeros(len(values) + 1, dtype=np.float64)
    np.cumsum(values, out=out[1:])
    return out


def snapshot_times(
    codes: npt.NDArray[np.int64],
    seconds: npt.NDArray[np.int64],
    as_of_s: int,
    offsets_days: tuple[int, ...] = (0, *WINDOWS_DAYS),
    at_as_of: bool = True,
    genesis: bool = True,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The (code, T) pairs at which an entity's windowed features change.

    For each day D an entity was active, its day-window counts change at the
    midnights ``D+1`` (the day's plays enter every window) and ``D+1+w`` (they
    leave the ``w``-day window). Snapshots at exactly those midnights make the
    windowed features exact at day granularity; times after ``as_of_s`` (the
    end of the data window) are dropped, since nothing is known there.

    Returns:
        ``(codes, seconds)`` of the snapshots, unique and sorted, int64.
    """
    next_midnight = (np.floor_divide(seconds, DAY_S) + 1) * DAY_S
    all_codes = np.concatenate([codes] * len(offsets_days))
    all_times = np.concatenate([next_midnight + offset * DAY_S for offset in offsets_days])
    if at_as_of:
        seen = codes[seconds < as_of_s]
        all_codes = np.concatenate([all_codes, seen])
        all_times = np.concatenate([all_times, np.full(len(seen), as_of_s, dtype=np.int64)])
    if genesis:
        first = np.unique(codes)
        all_codes = np.concatenate([all_codes, first])
        all_times = np.concatenate([all_times, np.zeros(len(first), dtype=np.int64)])
    keep = all_times <= as_of_s
    span = np.int64(as_of_s + 1)
    keys = np.sort(all_codes[keep] * span + all_times[keep])
    if len(keys):
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    return keys // span, keys % span
