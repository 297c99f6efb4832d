"""Feature pipelines: known answers on hand-built events, and the vectorised code against a plain loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import NotFoundError
from core.lake import Lake
from features.pipelines import PipelineOptions, build_feature_tables, compute_feature_tables, read_manifest
from features.pipelines.plays import plays_from_events
from features.pipelines.profile import genre_affinity, profile_activity
from features.pipelines.title import title_metadata, title_popularity
from features.pipelines.windows import DAY_S, snapshot_times

T0 = pd.Timestamp("2020-03-01", tz="UTC")


def _s(ts: pd.Timestamp) -> int:
    return int(ts.timestamp())


def _events(rows: list[tuple[str, str, str, int, int]]) -> pd.DataFrame:
    """(profile, title, ts offset like '1d 10h', position_s, duration_s) → lake-shaped events."""
    return pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(len(rows))],
            "profile_id": [r[0] for r in rows],
            "title_id": [r[1] for r in rows],
            "ts": [T0 + pd.Timedelta(r[2]) for r in rows],
            "position_s": [r[3] for r in rows],
            "duration_s": [r[4] for r in rows],
        }
    )


def _titles(genres: dict[str, list[str]], series: tuple[str, ...] = ()) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "title_id": list(genres),
            "type": ["series" if t in series else "movie" for t in genres],
            "title": list(genres),
            "genres": list(genres.values()),
            "languages": [["en"] for _ in genres],
            "maturity_level": [2 for _ in genres],
            "release_year": [2019 for _ in genres],
            "date_added": [T0 - pd.Timedelta("10D") for _ in genres],
            "duration_s": [3600 for _ in genres],
        }
    )


def test_progress_reports_become_steps_of_one_play_and_episodes_count_for_their_series() -> None:
    events = _events(
        [
            ("p1", "m1", "0h", 600, 3600),  # one viewing of m1 in three reports ...
            ("p1", "m1", "20min", 1800, 3600),
            ("p1", "m1", "50min", 3500, 3600),
            ("p1", "m1", "2D", 300, 3600),  # ... and a second one two days later
            ("p1", "ep1", "1h", 1300, 1300),
            ("p1", "ep2", "2h", 200, 1300),
        ]
    )
    episodes = pd.DataFrame({"episode_id": ["ep1", "ep2"], "series_id": ["s1", "s1"]})
    steps = plays_from_events(events, episodes)
    assert len(steps) == 6 and steps["play"].sum() == 4
    m1 = steps[steps["item_id"] == "m1"]
    assert m1["play"].tolist() == [1, 0, 0, 1]
    np.testing.assert_allclose(m1["minutes"], [10, 20, 1700 / 60, 5])  # advance of the furthest position
    assert m1["completed"].tolist() == [0, 0, 1, 0]  # on the report that crossed 90%
    assert steps.loc[steps["item_id"] == "ep1", "title_id"].item() == "s1"
    assert steps.loc[steps["item_id"] == "ep2", "completed"].item() == 0
    assert steps["ts"].is_monotonic_increasing


def test_profile_activity_known_answers() -> None:
    events = _events(
        [
            ("p1", "m1", "0D 10h", 3600, 3600),
            ("p1", "m2", "0D 12h", 1200, 3600),
            ("p1", "m1", "5D 9h", 3600, 3600),
            ("p1", "ep1", "5D 10h", 1300, 1300),
            ("p1", "ep2", "5D 11h", 1300, 1300),  # binge: same series within 3 h
            ("p2", "m2", "1D", 60, 3600),
        ]
    )
    genres = {"m1": ["Drama"], "m2": ["Comedy", "Drama"], "s1": ["Kids"]}
    plays = plays_from_events(events, pd.DataFrame({"episode_id": ["ep1", "ep2"], "series_id": ["s1", "s1"]}))
    at = np.array([_s(T0 + pd.Timedelta("6D")), _s(T0 + pd.Timedelta("1D")), _s(T0)])
    got = profile_activity(plays, genres, np.array(["p1", "p1", "p2"], dtype=object), at)
    six = got.iloc[0]
    assert (six["plays_1d"], six["plays_7d"], six["plays_30d"], six["plays_total"]) == (3, 5, 5, 5)
    assert six["watch_minutes_1d"] == pytest.approx(60 + 2 * 1300 / 60, rel=1e-6)
    assert (six["completed_1d"], six["completed_7d"]) == (3, 4)
    assert six["completion_rate"] == pytest.approx(4 / 5)
    assert six["distinct_genres"] == 3
    assert six["binge_ratio"] == pytest.approx(1 / 5)
    assert six["days_since_last_watch"] == pytest.approx(13 / 24, rel=1e-5)
    one = got.iloc[1]
    assert (one["plays_1d"], one["plays_total"], one["distinct_genres"]) == (2, 2, 2)
    nothing = got.iloc[2]  # p2 before its first play
    assert nothing["plays_total"] == 0 and np.isnan(nothing["days_since_last_watch"])


def test_genre_affinity_decays_with_the_half_life() -> None:
    half_life = 10.0
    events = _events([("p1", "a", "0D", 3600, 3600), ("p1", "b", "10D", 3600, 3600), ("p1", "ab", "20D", 1800, 3600)])
    plays = plays_from_events(events)
    genres = {"a": ["A"], "b": ["B"], "ab": ["A", "B"]}
    at = np.array([_s(T0 + pd.Timedelta("11D")), _s(T0 + pd.Timedelta("30D"))])
    got = genre_affinity(plays, genres, np.array(["p1", "p1"], dtype=object), at, half_life_days=half_life)
    # At day 11: A's 60 min are one half-life older than B's 60 min → weights 0.5 : 1.
    assert list(got.iloc[0]["affinity_genres"]) == ["B", "A"]
    np.testing.assert_allclose(got.iloc[0]["affinity_shares"], [2 / 3, 1 / 3], rtol=1e-5)
    # At day 30: A = 60·0.25 + 15·1, B = 60·0.5 + 15·1 (the 30 min of "ab" split equally).
    a, b = 60 * 0.25 + 15, 60 * 0.5 + 15
    np.testing.assert_allclose(got.iloc[1]["affinity_shares"], [b / (a + b), a / (a + b)], rtol=1e-5)


def test_title_popularity_counts_distinct_viewers_per_window() -> None:
    events = _events(
        [
            ("p1", "m1", "0D 1h", 3600, 3600),
            ("p1", "m1", "3D 1h", 3600, 3600),  # p1 again: one viewer, two plays
            ("p2", "m1", "6D 5h", 600, 3600),
            ("p3", "m1", "6D 6h", 3600, 3600),
            ("p3", "m1", "6D 20h", 3600, 3600),
        ]
    )
    plays = plays_from_events(events)
    titles = _titles({"m1": ["Drama"]})
    at = np.array([_s(T0 + pd.Timedelta("7D")), _s(T0 + pd.Timedelta("9D 2h"))])
    got = title_popularity(plays, titles, np.array(["m1", "m1"], dtype=object), at)
    seven = got.iloc[0]
    assert (seven["title_plays_1d"], seven["title_plays_7d"], seven["title_plays_total"]) == (3, 5, 5)
    assert (seven["title_viewers_1d"], seven["title_viewers_7d"], seven["title_viewers_total"]) == (2, 3, 3)
    assert seven["title_trend"] == pytest.approx(3 * 7 / 5)
    assert seven["title_completion_rate"] == pytest.approx(4 / 5)
    assert seven["title_days_since_release"] == pytest.approx(
        (T0 + pd.Timedelta("7D") - pd.Timestamp("2019-01-01", tz="UTC")).days
    )
    assert seven["title_days_since_added"] == pytest.approx(17)
    later = got.iloc[1]  # window [2D 2h, 9D 2h): p1's second play, p2, p3
    assert (later["title_viewers_7d"], later["title_plays_7d"], later["title_viewers_1d"]) == (3, 4, 0)


def _random_events(seed: int, n: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    genres = {f"t{i}": list(rng.choice(["A", "B", "C", "D"], size=rng.integers(1, 3), replace=False)) for i in range(8)}
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "profile_id": [f"p{i}" for i in rng.integers(0, 6, n)],
            "title_id": [f"t{i}" for i in rng.integers(0, 8, n)],
            "ts": T0 + pd.to_timedelta(rng.integers(0, 40 * DAY_S, n), unit="s"),
            "position_s": rng.integers(0, 3600, n),
            "duration_s": 3600,
        }
    )
    return events, _titles(genres)


@pytest.mark.parametrize("seed", [1, 2])
def test_vectorised_windows_match_a_plain_loop(seed: int) -> None:
    events, titles = _random_events(seed)
    plays = plays_from_events(events)
    rng = np.random.default_rng(seed + 100)
    queries = [
        (f"p{rng.integers(0, 7)}", T0 + pd.Timedelta(seconds=int(rng.integers(0, 45 * DAY_S)))) for _ in range(40)
    ]
    ids = np.array([q[0] for q in queries], dtype=object)
    at = np.array([_s(q[1]) for q in queries])
    got = profile_activity(plays, dict(zip(titles["title_id"], titles["genres"], strict=True)), ids, at)
    title_q = np.array([f"t{rng.integers(0, 9)}" for _ in queries], dtype=object)
    pop = title_popularity(plays, titles, title_q, at)
    for i, (profile, when) in enumerate(queries):
        mine = plays[(plays["profile_id"] == profile) & (plays["ts"] < when)]
        for w in (1, 7, 30):
            recent = mine[mine["ts"] >= when - pd.Timedelta(days=w)]
            assert got.iloc[i][f"plays_{w}d"] == recent["play"].sum()
            assert got.iloc[i][f"completed_{w}d"] == int(recent["completed"].sum())
            assert got.iloc[i][f"watch_minutes_{w}d"] == pytest.approx(recent["minutes"].sum(), rel=1e-5, abs=1e-3)
        of_title = plays[(plays["title_id"] == title_q[i]) & (plays["ts"] < when)]
        for w in (1, 7, 30):
            recent = of_title[of_title["ts"] >= when - pd.Timedelta(days=w)]
            assert pop.iloc[i][f"title_plays_{w}d"] == recent["play"].sum()
            assert pop.iloc[i][f"title_viewers_{w}d"] == recent["profile_id"].nunique()
        assert pop.iloc[i]["title_viewers_total"] == of_title["profile_id"].nunique()


def test_snapshots_land_where_windows_change_and_never_after_as_of() -> None:
    day = _s(T0)
    codes, times = snapshot_times(np.array([0, 0]), np.array([day + 3600, day + 3 * DAY_S]), as_of_s=day + 10 * DAY_S)
    expected = {day + d * DAY_S for d in (1, 2, 4, 5, 8)} | {day + 10 * DAY_S, 0}  # 0: the "no history" row
    assert set(times.tolist()) == expected
    assert (codes == 0).all() and times.max() <= day + 10 * DAY_S


def test_features_at_t_ignore_every_event_at_or_after_t() -> None:
    events, titles = _random_events(7, n=600)
    cut = T0 + pd.Timedelta("20D")
    rng = np.random.default_rng(0)
    # From the cut on: a burst that would change every feature if it leaked — known
    # profiles watching a new genre, and new profiles watching the known titles.
    n = 200
    burst = pd.DataFrame(
        {
            "event_id": [f"b{i}" for i in range(n)],
            "profile_id": [f"p{i % 6}" if i % 2 else f"q{i}" for i in range(n)],
            "title_id": [f"z{i % 3}" if i % 2 else f"t{i % 8}" for i in range(n)],
            "ts": cut + pd.to_timedelta(rng.integers(0, 3 * DAY_S, n), unit="s"),
            "position_s": 3600,
            "duration_s": 3600,
        }
    )
    burst.loc[0, "ts"] = cut  # exactly at t is not before t either
    catalog = pd.concat([titles, _titles({"z0": ["Z"], "z1": ["Z"], "z2": ["Z", "A"]})], ignore_index=True)
    full = compute_feature_tables(pd.concat([events, burst]), catalog, as_of=T0 + pd.Timedelta("60D")).tables
    before = compute_feature_tables(events[events["ts"] < cut], catalog, as_of=cut).tables
    for name, key in (
        ("profile_activity", "profile_id"),
        ("profile_genre_affinity", "profile_id"),
        ("title_popularity", "title_id"),
    ):
        epoch = full[name]["event_timestamp"] == pd.Timestamp(0, tz="UTC")
        # Every entity has a "no history" row at the epoch, future ones too: zeros, nothing to leak.
        assert not full[name][epoch].drop(columns=[key, "event_timestamp"]).map(_has_value).any().any()
        a = full[name][~epoch & (full[name]["event_timestamp"] <= cut)]
        b = before[name]
        # ``before`` also has a row per entity at its as_of (the cut); compare the rows both have.
        joined = a.merge(b, on=[key, "event_timestamp"], suffixes=("", "_before"), validate="one_to_one")
        assert len(joined) == len(a) and (joined["event_timestamp"] == cut).any()
        for column in a.columns.drop([key, "event_timestamp"]):
            left = joined[column].map(lambda v: list(v) if not np.isscalar(v) else v)
            right = joined[f"{column}_before"].map(lambda v: list(v) if not np.isscalar(v) else v)
            pd.testing.assert_series_equal(left, right, check_names=False, check_dtype=False)
    # The burst is visible after the cut, so the comparison above had something to miss.
    after = full["profile_genre_affinity"]
    assert after[after["event_timestamp"] > cut]["affinity_genres"].map(lambda g: "Z" in list(g)).any()


def _has_value(v: object) -> bool:
    """Whether a feature value says anything (a non-zero number or a non-empty list)."""
    if isinstance(v, list | np.ndarray):
        return len(v) > 0
    return bool(pd.notna(v) and v != 0)


def test_build_writes_tables_and_manifest(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    events, titles = _random_events(3)
    lake.write("titles", titles)
    lake.write("watch_events", events)
    report = build_feature_tables(lake, tmp_path / "feast", options=PipelineOptions(half_life_days=7))
    assert set(report.rows) == {"profile_activity", "profile_genre_affinity", "title_popularity", "title_metadata"}
    for name, rows in report.rows.items():
        assert len(pd.read_parquet(tmp_path / "feast" / "data" / f"{name}.parquet")) == rows
    assert read_manifest(tmp_path / "feast") == report
    start, as_of = report.window
    assert start <= events["ts"].min() < events["ts"].max() < as_of
    assert report.genres == ["A", "B", "C", "D"] and report.options["half_life_days"] == 7


def test_build_on_an_empty_lake_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="marquee data"):
        build_feature_tables(Lake(tmp_path / "lake"), tmp_path / "feast")
    with pytest.raises(NotFoundError, match="materialize"):
        read_manifest(tmp_path / "feast")


def test_title_metadata_columns() -> None:
    got = title_metadata(_titles({"m1": ["Drama"], "s1": ["Kids", "Comedy"]}, series=("s1",)))
    assert got["is_series"].tolist() == [0, 1]
    assert got["genres"].tolist() == [["Drama"], ["Kids", "Comedy"]]
    assert got["duration_min"].tolist() == [60.0, 60.0]


def test_to_seconds_reads_every_timestamp_form_the_same() -> None:
    """Parsed datetimes skip pandas' parse cache (a per-value scan); strings and naive values still parse."""
    from features.pipelines.windows import to_seconds

    aware = pd.Series(pd.to_datetime(["2024-03-01 10:00:00.900", "2024-03-02 00:00:01.000"], utc=True))
    expected = np.array([1709287200, 1709337601], dtype=np.int64)  # floor to the second
    for given in (
        aware,
        aware.astype("datetime64[ms, UTC]"),
        aware.dt.tz_localize(None),  # naive = UTC
        pd.DatetimeIndex(aware),
        aware.to_numpy(),
        pd.Series(["2024-03-01T10:00:00.900Z", "2024-03-02T00:00:01.000Z"]),
    ):
        assert to_seconds(given).tolist() == expected.tolist(), given
