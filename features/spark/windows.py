"""As-of aggregation in Spark: sums of an entity's past values at snapshot times, by one sort per entity.

The pandas engine answers "sum of v over the entity's events in ``[T - w, T)``"
with ``searchsorted`` over a prefix sum (:mod:`features.pipelines.windows`). The
Spark equivalent unions the events with *query points* (one at ``T`` and one at
``T - w`` per window) and takes a running sum per entity ordered by time; a query
point sorts before an event of the same second, so its running sum covers the
events strictly before it. The window's sum is the difference of two points'
running sums — the same prefix-sum difference, with no range join whose cost
would grow with plays × snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from features.pipelines.windows import DAY_S, WINDOWS_DAYS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

#: Column names used inside the union (not part of any output).
_T, _KIND, _SHIFT, _AT = "_t", "_kind", "_shift", "_at"
#: ``_shift`` of the query point at T itself (windows shift by at least a day).
_AT_T = 0
#: ``_shift`` of "no lower bound": the lifetime sum is the running sum at T.
ALL = None


def window_name(window_s: int | None) -> str:
    """Suffix of a windowed column: ``1d``, ``7d``, ``30d`` or ``total``."""
    return "total" if window_s is None else f"{window_s // DAY_S}d"


def snapshot_times(
    keyed: DataFrame,
    key: Sequence[str],
    as_of_s: int,
    offsets_days: Sequence[int] = (0, *WINDOWS_DAYS),
    at_as_of: bool = True,
    genesis: bool = True,
) -> DataFrame:
    """The ``(key..., T)`` snapshots at which windowed features change.

    The rule of :func:`features.pipelines.windows.snapshot_times`.

    Args:
        keyed: events with the ``key`` columns and ``s`` (event time, int64 seconds).
    """
    from pyspark.sql import functions as sf

    keys = [sf.col(k) for k in key]
    next_midnight = (sf.floor(sf.col("s") / DAY_S) + 1) * DAY_S
    parts = [keyed.select(*keys, (next_midnight + offset * DAY_S).cast("long").alias("T")) for offset in offsets_days]
    if at_as_of:
        parts.append(keyed.where(sf.col("s") < as_of_s).select(*keys, sf.lit(as_of_s).cast("long").alias("T")))
    if genesis:
        parts.append(keyed.select(*keys).distinct().select(*keys, sf.lit(0).cast("long").alias("T")))
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    return union.where(sf.col("T") <= as_of_s).distinct()


def as_of_sums(
    events: DataFrame,
    queries: DataFrame,
    key: Sequence[str],
    windows: Mapping[str, Sequence[int | None]],
    last: str | None = None,
) -> DataFrame:
    """Per query ``(key..., T)``: each value summed over the key's events before T, per window.

    Args:
        events: the ``key`` columns, ``s`` (int64 seconds) and one numeric column per value of ``windows``.
        queries: the ``key`` columns and ``T`` (int64 seconds).
        windows: value column → windows in seconds (``None``: every event before T).
        last: also return ``last_s``, the latest ``s`` among events whose ``last`` column is 1 before T
            (null when none).

    Returns:
        ``queries``' rows with ``<value>__<window_name>`` (double) per value and window,
        and ``last_s`` when asked.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    values = list(windows)
    shifts = sorted({w for ws in windows.values() for w in ws if w is not None})
    keys = [sf.col(k) for k in key]
    event_rows = events.select(
        *keys,
        sf.col("s").cast("long").alias(_T),
        sf.lit(1).alias(_KIND),
        sf.lit(None).cast("long").alias("T"),
        sf.lit(None).cast("long").alias(_SHIFT),
        *[sf.col(v).cast("double").alias(v) for v in values],
        (sf.when(sf.col(last) > 0, sf.col("s")) if last else sf.lit(None)).cast("long").alias(_AT),
    )
    point_rows = None
    for shift in [_AT_T, *shifts]:
        points = queries.select(
            *keys,
            (sf.col("T") - shift).cast("long").alias(_T),
            sf.lit(0).alias(_KIND),
            sf.col("T").cast("long").alias("T"),
            sf.lit(shift).cast("long").alias(_SHIFT),
            *[sf.lit(0.0).alias(v) for v in values],
            sf.lit(None).cast("long").alias(_AT),
        )
        point_rows = points if point_rows is None else point_rows.unionByName(points)
    assert point_rows is not None
    running = Window.partitionBy(*keys).orderBy(_T, _KIND).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    cumulative = event_rows.unionByName(point_rows).select(
        *keys,
        "T",
        _SHIFT,
        _KIND,
        *[sf.sum(v).over(running).alias(v) for v in values],
        sf.max(_AT).over(running).alias(_AT),
    )
    at_points = cumulative.where(sf.col(_KIND) == 0)

    def at(shift: int, column: str) -> Column:
        return sf.max(sf.when(sf.col(_SHIFT) == shift, sf.col(column)))

    aggregates = []
    for value in values:
        for window in windows[value]:
            upper = at(_AT_T, value)
            total = upper if window is None else upper - at(window, value)
            aggregates.append(total.alias(f"{value}__{window_name(window)}"))
    if last:
        aggregates.append(at(_AT_T, _AT).alias("last_s"))
    return at_points.groupBy(*keys, "T").agg(*aggregates)
