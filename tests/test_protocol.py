"""The temporal-user-80-20 split, on small frames with a known right answer."""

from __future__ import annotations

import pandas as pd
import pytest

from core.errors import InvalidInputError
from training.protocol import interactions_from_events, temporal_user_split, to_interactions, validation_split


def frame(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "ts"])


def test_last_ceil_20_percent_of_each_user_goes_to_test() -> None:
    # u1: 6 interactions → ceil(1.2) = 2 in test; u2: 5 → 1 in test; u3: 4 → dropped.
    rows = [("u1", f"i{k}", 100 + k) for k in range(6)]
    rows += [("u2", f"i{k}", 200 + k) for k in range(5)]
    rows += [("u3", f"i{k}", 300 + k) for k in range(4)]
    rows += [("z", f"i{k}", k) for k in range(10)]  # makes i4, i5 train items; its own test items are unknown
    split = temporal_user_split(frame(rows))
    assert sorted(split.test[split.test.user_id == "u1"].item_id) == ["i4", "i5"]
    assert split.test[split.test.user_id == "u2"].item_id.tolist() == ["i4"]
    assert "u3" not in set(split.train.user_id)
    assert split.test_users == ["u1", "u2"]


def test_duplicates_keep_the_latest_and_ties_break_by_numeric_item_id() -> None:
    rows = [("u1", "9", 5), ("u1", "10", 5), ("u1", "3", 1), ("u1", "4", 2), ("u1", "5", 3), ("u1", "3", 4)]
    rows += [("z", item, k) for k, item in enumerate(["10", "9", "5", "4", "3", "100", "101"])]
    split = temporal_user_split(frame(rows))
    # after de-duplication: 4@2, 5@3, 3@4, 9@5, 10@5 → the last one (10, numerically after 9) is test
    assert split.test[split.test.user_id == "u1"].item_id.tolist() == ["10"]
    assert split.train[split.train.user_id == "u1"].item_id.tolist() == ["4", "5", "3", "9"]


def test_prefixed_numeric_ids_sort_numerically() -> None:
    rows = [("u1", f"ml-{k}", 7) for k in (10, 9, 8, 2, 1)]
    rows += [("z", f"ml-{k}", t) for t, k in enumerate((10, 9, 8, 2, 1, 99))]
    split = temporal_user_split(frame(rows))
    assert split.test[split.test.user_id == "u1"].item_id.tolist() == ["ml-10"]


def test_ids_that_are_not_one_prefix_and_a_number_sort_as_text() -> None:
    rows = [("u1", item, 7) for item in ("b", "a9", "a10", "tt5", "ml20")]
    rows += [("z", item, t) for t, item in enumerate(("b", "a9", "a10", "tt5", "ml20", "x"))]
    split = temporal_user_split(frame(rows))
    # same second: text order a10 < a9 < b < ml20 < tt5, so tt5 is the latest
    assert split.test[split.test.user_id == "u1"].item_id.tolist() == ["tt5"]
    assert split.train[split.train.user_id == "u1"].item_id.tolist() == ["a10", "a9", "b", "ml20"]


def test_test_items_unseen_in_train_are_dropped() -> None:
    rows = [("u1", f"a{k}", k) for k in range(10)]
    rows += [("u2", "a8", 0)] + [("u2", f"a{k}", k + 1) for k in range(8)] + [("u2", "new", 9)]
    split = temporal_user_split(frame(rows))
    assert "new" not in set(split.test.item_id)
    assert split.test_items() == {"u1": {"a8"}, "u2": {"a7"}}


def test_validation_split_keeps_short_users_in_train() -> None:
    rows = [("u1", f"i{k}", k) for k in range(10)] + [("u2", f"i{k}", k) for k in (8, 9, 0)]
    val = validation_split(frame(rows))
    assert set(val.train.user_id) == {"u1", "u2"}
    assert val.test_users == ["u1"]
    assert val.test.item_id.tolist() == ["i8", "i9"]


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        temporal_user_split(frame([]))
    with pytest.raises(InvalidInputError, match="missing"):
        temporal_user_split(pd.DataFrame({"user_id": ["u"], "item_id": ["i"]}))
    with pytest.raises(InvalidInputError, match="5 or more"):
        temporal_user_split(frame([("u1", "i1", 1)]))


def test_watch_events_become_weighted_interactions() -> None:
    events = pd.DataFrame(
        {
            "profile_id": ["p1", "p1", "p1"],
            "title_id": ["t1", "t1", "t2"],
            "ts": pd.to_datetime([10, 20, 30], unit="s", utc=True),
            "position_s": [60, 5400, 60],
            "duration_s": [6000, 6000, 6000],
            "rating": [None, None, None],
        }
    )
    out = interactions_from_events(events).set_index("item_id")
    assert out.loc["t1", "ts"] == 20, "repeated events keep the latest time"
    assert out.loc["t1", "weight"] > out.loc["t2", "weight"], "a finished title weighs more than a sample"
    inter = to_interactions(out.reset_index())
    assert len(inter) == 2
    with pytest.raises(InvalidInputError, match="no watch events"):
        interactions_from_events(events.iloc[:0])
