"""The offline evaluation protocol ``temporal-user-80-20`` (see EVALUATION.md).

Every offline figure Marquee reports goes through this module, so the split is
written once: the last 20% of each user's interactions (by time) are held out,
which mirrors serving — we always predict what a profile watches *next*.

Frames here use the columns ``user_id`` (str), ``item_id`` (str), ``ts`` (int64
seconds) and ``weight`` (float32). ``interactions_from_events`` turns lake
``watch_events`` into that shape; ``to_interactions`` into the models' input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.errors import InvalidInputError
from core.rules import COMPLETED_SHARE
from models.base import Interactions

logger = logging.getLogger(__name__)

PROTOCOL = "temporal-user-80-20"
COLUMNS = ("user_id", "item_id", "ts", "weight")
MIN_INTERACTIONS = 5
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Split:
    """Train and held-out interactions; ``test`` users are a subset of ``train`` users."""

    train: pd.DataFrame
    test: pd.DataFrame

    @property
    def test_users(self) -> list[str]:
        """Users with at least one held-out interaction, sorted for reproducibility."""
        return sorted(self.test["user_id"].unique().tolist())

    def test_items(self) -> dict[str, set[str]]:
        """user_id → the set of held-out item ids."""
        return {u: set(g.tolist()) for u, g in self.test.groupby("user_id", sort=False)["item_id"]}

    def describe(self) -> dict[str, int]:
        """Sizes, as reported in EVALUATION.md."""
        return {
            "users": int(self.train["user_id"].nunique()),
            "train_items": int(self.train["item_id"].nunique()),
            "train_interactions": len(self.train),
            "test_users": int(self.test["user_id"].nunique()),
            "test_interactions": len(self.test),
        }


def normalise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Check and coerce a (user_id, item_id, ts[, weight]) frame; clear error when columns are missing."""
    missing = [c for c in ("user_id", "item_id", "ts") if c not in df.columns]
    if missing:
        raise InvalidInputError(
            f"interactions need columns user_id, item_id, ts (and optionally weight); missing {missing}"
        )
    out = pd.DataFrame(
        {
            "user_id": df["user_id"].astype(str).to_numpy(),
            "item_id": df["item_id"].astype(str).to_numpy(),
            "ts": _to_seconds(df["ts"]),
            "weight": (df["weight"].to_numpy(np.float32) if "weight" in df.columns else np.ones(len(df), np.float32)),
        }
    )
    return out


def _to_seconds(ts: pd.Series) -> np.ndarray:
    """int64 seconds since the epoch from ints or datetimes (naive datetimes count as UTC)."""
    if pd.api.types.is_datetime64_any_dtype(ts):
        values = pd.to_datetime(ts, utc=True)
        # Unit-independent: lake timestamps are datetime64[ms], so int64 // 10**9 would be wrong.
        return ((values - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)  # type: ignore[no-any-return]
    return ts.to_numpy(np.int64)  # type: ignore[no-any-return]


def interactions_from_events(events: pd.DataFrame) -> pd.DataFrame:
    """Lake ``watch_events`` → one row per (profile, title) with a confidence weight.

    The weight grows with how much of the title was watched (completion counts most),
    and with an explicit rating when there is one, so ALS-style models trust a
    finished film more than a 2-minute sample. Repeated events keep the latest
    timestamp and the furthest progress.
    """
    needed = ["profile_id", "title_id", "ts"]
    missing = [c for c in needed if c not in events.columns]
    if missing:
        raise InvalidInputError(f"watch events need columns {needed}; missing {missing}")
    if events.empty:
        raise InvalidInputError("no watch events: load a dataset first (marquee data load ...)")
    progress = np.ones(len(events), np.float32)
    if "position_s" in events.columns and "duration_s" in events.columns:
        pos = events["position_s"].to_numpy(np.float64)
        dur = events["duration_s"].to_numpy(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            progress = np.where(dur > 0, np.clip(pos / np.maximum(dur, 1), 0.0, 1.0), 1.0).astype(np.float32)
    frame = pd.DataFrame(
        {
            "user_id": events["profile_id"].astype(str).to_numpy(),
            "item_id": events["title_id"].astype(str).to_numpy(),
            "ts": _to_seconds(events["ts"]),
            "progress": progress,
        }
    )
    rating = events["rating"] if "rating" in events.columns else None
    frame["rating"] = rating.to_numpy(np.float32) if rating is not None else np.nan
    grouped = frame.groupby(["user_id", "item_id"], sort=False).agg(
        ts=("ts", "max"), progress=("progress", "max"), rating=("rating", "last")
    )
    grouped = grouped.reset_index()
    completed = (grouped["progress"] >= COMPLETED_SHARE).astype(np.float32)
    weight = 1.0 + 2.0 * grouped["progress"].to_numpy(np.float32) + 2.0 * completed.to_numpy()
    # Ratings are on different scales per dataset; only the share of the scale matters.
    r = grouped["rating"].to_numpy(np.float32)
    if np.isfinite(r).any():
        top = np.nanmax(r)
        weight = weight * np.where(np.isfinite(r) & (top > 0), 0.5 + np.nan_to_num(r) / max(top, 1e-6), 1.0)
    grouped["weight"] = weight.astype(np.float32)
    return grouped[list(COLUMNS)]


def _item_order(item_ids: pd.Series) -> npt.NDArray[np.int64]:
    """Sort key for item ids: numeric order when every id is one prefix + a number (``"ml-42"``), else text.

    The protocol breaks same-second ties by item id; datasets number their items, so
    ``movieId`` 9 comes before 10 whether or not the lake prefixed the ids. The ids are
    parsed once per distinct item (not once per interaction: minutes on 25M rows).
    """
    codes, uniques = pd.factorize(item_ids, sort=True)  # codes follow the ids' text order
    parts = pd.Series(uniques, dtype=object).str.extract(r"^(\D*)(\d+)$")
    if parts[1].isna().any() or parts[0].nunique() > 1:
        return codes.astype(np.int64)
    return parts[1].astype(np.int64).to_numpy()[codes]


def _dedupe(df: pd.DataFrame) -> pd.DataFrame:
    """Order each user's interactions by (ts, item id) and keep the latest of each (user, item): steps 1 and 3."""
    df = df.assign(_order=_item_order(df["item_id"]))
    df = df.sort_values(["user_id", "ts", "_order"], kind="mergesort")
    return df.drop_duplicates(["user_id", "item_id"], keep="last").drop(columns="_order")


def temporal_user_split(
    df: pd.DataFrame,
    *,
    test_fraction: float = TEST_FRACTION,
    min_interactions: int = MIN_INTERACTIONS,
    drop_short_users: bool = True,
) -> Split:
    """Split each user's time-ordered interactions: the last ``ceil(test_fraction * n)`` are held out.

    Args:
        df: interactions with user_id, item_id, ts (and optionally weight).
        test_fraction: share of each user's interactions held out.
        min_interactions: users with fewer interactions get no test part.
        drop_short_users: drop such users entirely (the protocol's outer split) or keep
            them in train only (the validation split, so no training data is lost).

    Returns:
        A ``Split``; test interactions of items unseen in train are dropped.

    Raises:
        InvalidInputError: empty data or no user with enough interactions.
    """
    if not 0.0 < test_fraction < 1.0:
        raise InvalidInputError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if df.empty:
        raise InvalidInputError("no interactions to split: the dataset is empty")
    data = _dedupe(normalise_frame(df))
    counts = data.groupby("user_id", sort=False)["item_id"].transform("size").to_numpy()
    long_enough = counts >= min_interactions
    if not long_enough.any():
        raise InvalidInputError(
            f"no user has {min_interactions} or more interactions; the protocol needs longer histories"
        )
    if drop_short_users:
        data = data[long_enough].reset_index(drop=True)
        counts = counts[long_enough]
        long_enough = np.ones(len(data), bool)
    rank = data.groupby("user_id", sort=False).cumcount().to_numpy()
    n_test = np.ceil(test_fraction * counts - 1e-9).astype(np.int64)
    is_test = long_enough & (rank >= counts - n_test)
    train = data[~is_test].reset_index(drop=True)
    test = data[is_test]
    test = test[test["item_id"].isin(set(train["item_id"].unique()))].reset_index(drop=True)
    if test.empty:
        raise InvalidInputError("no held-out interaction has an item seen in training; the data is too small")
    split = Split(train=train, test=test)
    logger.info("split %s", split.describe())
    return split


def validation_split(train: pd.DataFrame) -> Split:
    """The tuning split: the same rule applied to ``train`` (never look at test when tuning)."""
    return temporal_user_split(train, drop_short_users=False)


def to_interactions(df: pd.DataFrame) -> Interactions:
    """A protocol frame → the models' ``Interactions`` (external ids, time order kept)."""
    return Interactions(
        user_ids=df["user_id"].to_numpy(dtype=np.str_),
        item_ids=df["item_id"].to_numpy(dtype=np.str_),
        timestamps=df["ts"].to_numpy(np.int64),
        weights=df["weight"].to_numpy(np.float32),
    )
