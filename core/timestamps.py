"""Timestamps as every package reads them: UTC, parsed once, fast when already parsed.

Why a module of its own: ``pd.to_datetime(..., utc=True)`` with its default parse cache
first samples the values one ``Timestamp`` at a time to decide whether caching pays:
11 ms for 20,000 values that are datetimes already, 0.06 ms without the cache. The
API's online push and exporter call it on every batch, so the choice is made here, once.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def _to_utc(values: Any) -> Any:
    """``pd.to_datetime(values, utc=True)``, with the parse cache only where there is text to parse."""
    dtype = getattr(values, "dtype", None)
    parsed = dtype is not None and pd.api.types.is_datetime64_any_dtype(dtype)
    return pd.to_datetime(values, utc=True, cache=not parsed)


def utc_series(values: pd.Series) -> pd.Series:
    """``values`` (datetimes, naive = UTC, or strings) as a ``datetime64[..., UTC]`` series."""
    return pd.Series(_to_utc(values))


def utc_index(values: Any) -> pd.DatetimeIndex:
    """``values`` (a series, an index, a NumPy array or a list) as a UTC ``DatetimeIndex``."""
    return pd.DatetimeIndex(_to_utc(values))
