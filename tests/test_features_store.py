"""The Feast store end to end on SQLite and on a real Redis: materialize, point-in-time frames, online reads, push.

Every test runs once per online store. Redis tests use a unique Feast project per
run (keys are suffixed with it) and delete their keys afterwards.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import require_service

from core.errors import InvalidInputError, SchemaError
from core.lake import Lake
from core.settings import Settings
from features.feast_repo.config import feature_store_config, redis_connection_string
from features.online import OnlineFeatureReader
from features.pipelines.match import genre_match_scores
from features.pipelines.plays import plays_from_events
from features.push import push_watch_events
from features.retrieval import training_frame
from features.store import materialize, open_store

T0 = pd.Timestamp("2021-05-01", tz="UTC")
DAY = pd.Timedelta("1D")
GENRES = ["Action", "Comedy", "Drama", "Kids", "Horror"]


def small_lake(root: Path, seed: int = 5) -> Lake:
    """30 profiles, 12 movies and 2 series (3 episodes each), ~1500 reports over 40 days."""
    rng = np.random.default_rng(seed)
    lake = Lake(root)
    movies = [f"m{i}" for i in range(12)]
    series = ["s0", "s1"]
    titles = pd.DataFrame(
        {
            "title_id": movies + series,
            "type": ["movie"] * 12 + ["series"] * 2,
            "title": movies + series,
            "genres": [list(rng.choice(GENRES, size=rng.integers(1, 3), replace=False)) for _ in range(14)],
            "languages": [["en"]] * 14,
            "maturity_level": rng.integers(0, 4, 14),
            "release_year": rng.integers(1990, 2021, 14),
            "date_added": [T0 - pd.Timedelta(days=int(d)) for d in rng.integers(0, 400, 14)],
            "duration_s": [5400] * 12 + [1500] * 2,
        }
    )
    episodes = pd.DataFrame(
        {
            "episode_id": [f"{s}e{k}" for s in series for k in range(3)],
            "series_id": [s for s in series for _ in range(3)],
            "season_number": 1,
            "episode_number": [k + 1 for _ in series for k in range(3)],
            "duration_s": 1500,
        }
    )
    items = movies + episodes["episode_id"].tolist()
    n = 1500
    seconds = rng.integers(0, 40 * 86_400, n)
    seconds[:20] = (seconds[:20] // 86_400) * 86_400  # some reports exactly at midnight
    item = rng.choice(items, n)
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "profile_id": [f"p{i}" for i in rng.integers(0, 30, n)],
            "title_id": item,
            "ts": T0 + pd.to_timedelta(seconds, unit="s"),
            "position_s": rng.integers(30, 5400, n),
            "duration_s": [1500 if "e" in t[1:] else 5400 for t in item],
        }
    )
    events["position_s"] = np.minimum(events["position_s"], events["duration_s"])
    lake.write("titles", titles)
    lake.write("episodes", episodes)
    lake.write("watch_events", events)
    return lake


def _settings(home: Path, backend: str) -> Settings:
    if backend == "redis":
        require_service("Redis", "127.0.0.1", 6379)
        return Settings(home=home, feast_online="redis://127.0.0.1:6379")
    return Settings(home=home)


class Built:
    """A materialized store with its lake and settings."""

    def __init__(self, settings: Settings, lake: Lake, project: str) -> None:
        self.settings = settings
        self.lake = lake
        self.store = open_store(settings, project=project)
        self.report = materialize(self.store, lake)

    def close(self) -> None:
        self.store.teardown()


def _build(tmp: Path, backend: str) -> Built:
    settings = _settings(tmp / "ws", backend)
    return Built(settings, small_lake(tmp / "lake"), project=f"mqt{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """Read-only store shared by the tests of one backend."""
    b = _build(tmp_path_factory.mktemp(request.param), request.param)
    yield b
    b.close()


@pytest.fixture(params=["sqlite", "redis"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Built]:
    """A store of its own, for tests that write to it."""
    b = _build(tmp_path, request.param)
    yield b
    b.close()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | np.ndarray) or isinstance(b, list | np.ndarray):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-6)
    return bool(a == b)


def _latest_offline(built: Built, name: str, key: str) -> pd.DataFrame:
    table = pd.read_parquet(Path(built.store.repo_path) / "data" / f"{name}.parquet")
    return table.sort_values("event_timestamp").groupby(key).tail(1).set_index(key)


def test_online_values_equal_the_latest_offline_rows(built: Built) -> None:
    for view, key, service in (
        ("profile_activity", "profile_id", "profile_v1"),
        ("profile_genre_affinity", "profile_id", "profile_v1"),
        ("title_popularity", "title_id", "title_v1"),
        ("title_metadata", "title_id", "title_v1"),
    ):
        latest = _latest_offline(built, view, key)
        sample = sorted(latest.index)[:: max(1, len(latest) // 10)]
        online = built.store.get_online_features(
            built.store.get_feature_service(service), [{key: k} for k in sample]
        ).to_dict()
        assert len(sample) >= 2
        for i, entity in enumerate(sample):
            for column in latest.columns.drop("event_timestamp"):
                expected = latest.loc[entity, column]
                expected = list(expected) if isinstance(expected, np.ndarray) else expected
                assert _same(online[column][i], expected), (view, entity, column, online[column][i], expected)


def test_training_frame_uses_only_events_before_each_label(built: Built) -> None:
    events = built.lake.read("watch_events")
    labels = events.sample(60, random_state=1).sort_values("ts")
    episodes = built.lake.read("episodes")
    series = dict(zip(episodes["episode_id"], episodes["series_id"], strict=True))
    entity_df = pd.DataFrame(
        {
            "profile_id": labels["profile_id"].to_numpy(),
            "title_id": [series.get(t, t) for t in labels["title_id"]],
            "event_timestamp": labels["ts"].to_numpy(),
            "label": 1,
        }
    )
    frame = training_frame(built.store, entity_df, "ranker_v1")
    assert len(frame) == len(entity_df) and frame["label"].eq(1).all()
    steps = plays_from_events(events, episodes)
    for row in frame.itertuples():
        # Snapshots are taken at midnights, so the row in force at t holds the plays
        # strictly before t's midnight: never the label's own event, nothing after it.
        cutoff = pd.Timestamp(row.event_timestamp).floor("D")
        mine = steps[(steps["profile_id"] == row.profile_id) & (steps["ts"] < cutoff)]
        theirs = steps[(steps["title_id"] == row.title_id) & (steps["ts"] < cutoff)]
        week = theirs[theirs["ts"] >= cutoff - 7 * DAY]
        assert row.plays_total == mine["play"].sum()
        assert row.plays_7d == mine.loc[mine["ts"] >= cutoff - 7 * DAY, "play"].sum()
        assert row.title_plays_total == theirs["play"].sum()
        assert row.title_viewers_7d == week["profile_id"].nunique()
    expected_match = genre_match_scores(frame["affinity_genres"], frame["affinity_shares"], frame["genres"])
    np.testing.assert_allclose(frame["genre_match"].to_numpy(dtype=float), expected_match, rtol=1e-6)


def test_training_frame_names_missing_columns(built: Built) -> None:
    with pytest.raises(InvalidInputError, match="title_id"):
        training_frame(built.store, pd.DataFrame({"profile_id": ["p1"], "event_timestamp": [T0]}), "ranker_v1")


def test_reader_serves_titles_from_memory_with_the_online_values(built: Built) -> None:
    reader = OnlineFeatureReader(built.store)
    ids = ["m0", "s1", "nope", "m5"]
    cached = reader.title_features(ids)
    direct = reader.feast_title_features(ids)
    assert cached["title_id"].tolist() == ids
    for column in direct.columns.drop("title_id"):
        for i in (0, 1, 3):
            assert _same(cached[column].iloc[i], direct[column].iloc[i]), column
    assert cached.drop(columns="title_id").iloc[2].isna().all()
    matrix = reader.title_matrix(ids)
    assert matrix.shape == (4, len(reader.numeric_columns)) and matrix.dtype == np.float32
    assert np.isnan(matrix[2]).all() and not np.isnan(matrix[0, reader.numeric_columns.index("release_year")])
    np.testing.assert_array_equal(
        reader.title_matrix(ids, ["release_year"])[:, 0], matrix[:, reader.numeric_columns.index("release_year")]
    )
    with pytest.raises(InvalidInputError, match="genres"):
        reader.title_matrix(ids, ["genres"])
    profile = reader.profile_features("p3")
    assert profile["plays_total"] == _latest_offline(built, "profile_activity", "profile_id").loc["p3", "plays_total"]


def test_push_updates_the_profiles_and_titles_it_touches(fresh: Built) -> None:
    reader = OnlineFeatureReader(fresh.store, check_interval_s=0, background_refresh=False)
    background = OnlineFeatureReader(fresh.store, check_interval_s=0)
    background.title_features(["m3"])  # cache loaded before the push
    before_profile = reader.profile_features("p1")
    before_title = reader.title_features(["m3", "s0"]).set_index("title_id")
    untouched = reader.profile_features("p2")
    as_of = pd.Timestamp(fresh.report.tables.as_of)
    new = pd.DataFrame(
        {
            "event_id": ["n1", "n2", "n3", "n4"],
            "profile_id": ["p1", "p1", "p1", "newcomer"],
            "title_id": ["m3", "s0e1", "s0e2", "m3"],
            "ts": [as_of + pd.Timedelta(5, "D") + pd.Timedelta(h, "h") for h in (1, 2, 3, 4)],
            "position_s": [5400, 1500, 1500, 100],
            "duration_s": [5400, 1500, 1500, 5400],
        }
    )
    report = push_watch_events(fresh.store, new, fresh.lake)
    assert (report.profiles, report.titles) == (2, 2)
    after = reader.profile_features("p1")
    assert after["plays_total"] == before_profile["plays_total"] + 3
    assert after["plays_1d"] == 3 and after["completed_1d"] == 3  # five quiet days before: only the new ones
    assert after["days_since_last_watch"] == pytest.approx(3601 / 86_400, abs=1e-6)  # rows stamped 1 s after the newest
    assert reader.profile_features("newcomer")["plays_total"] == 1
    assert reader.profile_features("p2") == untouched
    titles = reader.title_features(["m3", "s0"]).set_index("title_id")
    assert titles.loc["m3", "title_plays_total"] == before_title.loc["m3", "title_plays_total"] + 2
    assert titles.loc["s0", "title_plays_total"] == before_title.loc["s0", "title_plays_total"] + 2
    assert titles.loc["m3", "title_viewers_1d"] == 2
    # The default reader answers from its old cache while it reloads in the background.
    expected = titles.loc["m3", "title_plays_total"]
    deadline = time.monotonic() + 30
    while background.title_features(["m3"])["title_plays_total"].item() != expected:
        assert time.monotonic() < deadline, "the background refresh never landed"
        time.sleep(0.05)


def test_a_followed_reader_reloads_pushes_by_itself_and_reads_never_reload(fresh: Built) -> None:
    """A server's reader follows the store from its own thread: a read after a push answers at once from memory."""
    following = OnlineFeatureReader(fresh.store, check_interval_s=0.05)
    idle = OnlineFeatureReader(fresh.store, check_interval_s=3600)
    following.follow()
    idle.follow()
    try:
        before = following.title_features(["m3"])["title_plays_total"].item()
        assert idle.title_features(["m3"])["title_plays_total"].item() == before
        as_of = pd.Timestamp(fresh.report.tables.as_of)
        new = pd.DataFrame(
            {
                "event_id": ["f1"],
                "profile_id": ["p1"],
                "title_id": ["m3"],
                "ts": [as_of + pd.Timedelta(2, "D")],
                "position_s": [5400],
                "duration_s": [5400],
            }
        )
        push_watch_events(fresh.store, new, fresh.lake)
        deadline = time.monotonic() + 30
        while following.title_features(["m3"])["title_plays_total"].item() != before + 1:
            assert time.monotonic() < deadline, "the following thread never reloaded the pushed title"
            time.sleep(0.05)
        # The other reader's thread waits an hour between checks, and its reads start no reload of their own.
        for _ in range(5):
            assert idle.title_features(["m3"])["title_plays_total"].item() == before
            time.sleep(0.05)
    finally:
        following.stop_following()
        idle.stop_following()
    assert not any(t.name == "title-feature-follow" for t in threading.enumerate())


def test_a_push_reloads_only_the_titles_it_touched_and_equals_a_full_reload(fresh: Built) -> None:
    """A reader follows a push by reading the pushed titles alone; its cache then equals a full reload's."""
    from features.store import ONLINE_CHANGES_FILE, bump_online_version, online_changes_since, online_version

    reader = OnlineFeatureReader(fresh.store, check_interval_s=0, background_refresh=False)
    every = sorted(reader._current().index)
    before = reader.title_features(every)
    version = online_version(Path(fresh.store.repo_path))
    as_of = pd.Timestamp(fresh.report.tables.as_of)
    new = pd.DataFrame(
        {
            "event_id": ["q1", "q2"],
            "profile_id": ["p1", "p2"],
            "title_id": ["m3", "m3"],
            "ts": [as_of + pd.Timedelta(1, "D"), as_of + pd.Timedelta(1, "D") + pd.Timedelta(1, "h")],
            "position_s": [5400, 5400],
            "duration_s": [5400, 5400],
        }
    )
    push_watch_events(fresh.store, new, fresh.lake)
    assert online_changes_since(Path(fresh.store.repo_path), version) == {"m3"}
    read: list[list[str]] = []
    original = reader.feast_title_features
    reader.feast_title_features = lambda ids: read.append(list(ids)) or original(ids)  # type: ignore[method-assign]
    after = reader.title_features(every)
    assert read == [["m3"]], "only the pushed title was read"
    assert after.loc[after["title_id"] == "m3", "title_plays_total"].item() == (
        before.loc[before["title_id"] == "m3", "title_plays_total"].item() + 2
    )
    full = OnlineFeatureReader(fresh.store, check_interval_s=0, background_refresh=False).title_features(every)
    pd.testing.assert_frame_equal(after, full)
    np.testing.assert_array_equal(reader.title_matrix(every), OnlineFeatureReader(fresh.store).title_matrix(every))
    # A change that names no titles (a materialize) makes every reader reload in full.
    pushed = online_version(Path(fresh.store.repo_path))
    bump_online_version(Path(fresh.store.repo_path))
    assert len((Path(fresh.store.repo_path) / ONLINE_CHANGES_FILE).read_text().splitlines()) == 1
    assert online_changes_since(Path(fresh.store.repo_path), pushed) is None
    assert online_changes_since(Path(fresh.store.repo_path), online_version(Path(fresh.store.repo_path))) == set()
    reader.title_features(["m3"])
    assert len(read[-1]) > 1, "a full reload after a materialize"


def test_earlier_events_count_as_history_but_touch_no_title(fresh: Built) -> None:
    """The API's feed sends a profile's events not exported yet as ``earlier``: they count, but only for history."""
    reader = OnlineFeatureReader(fresh.store, check_interval_s=0, background_refresh=False)
    before_profile = reader.profile_features("p1")["plays_total"]
    before_s0 = reader.title_features(["s0"]).set_index("title_id").loc["s0", "title_plays_total"]
    as_of = pd.Timestamp(fresh.report.tables.as_of)

    def event(event_id: str, title_id: str, hours: int) -> dict[str, Any]:
        ts = as_of + pd.Timedelta(5, "D") + pd.Timedelta(hours, "h")
        return {"event_id": event_id, "profile_id": "p1", "title_id": title_id, "ts": ts, "position_s": 1500,
                "duration_s": 1500}  # fmt: skip

    earlier = pd.DataFrame([event("old1", "s0e1", 1), event("old2", "s0e2", 2)])
    new = pd.DataFrame([event("now1", "m3", 3), event("old2", "s0e2", 2)])  # a row in both is counted once
    report = push_watch_events(fresh.store, new.iloc[:1], fresh.lake, earlier=earlier)
    assert (report.profiles, report.titles) == (1, 1)  # m3 only: s0 was not touched by the new event
    assert reader.profile_features("p1")["plays_total"] == before_profile + 3  # both earlier plays and the new one
    assert reader.title_features(["s0"]).set_index("title_id").loc["s0", "title_plays_total"] == before_s0
    report = push_watch_events(fresh.store, new, fresh.lake, earlier=earlier)
    assert reader.profile_features("p1")["plays_total"] == before_profile + 3


def test_push_refuses_bad_events_and_changes_nothing(fresh: Built) -> None:
    reader = OnlineFeatureReader(fresh.store)
    before = reader.profile_features("p1")
    bad = pd.DataFrame({"event_id": ["x"], "profile_id": ["p1"], "title_id": ["m1"], "ts": [T0]})
    with pytest.raises(SchemaError, match="position_s"):
        push_watch_events(fresh.store, bad, fresh.lake)
    with pytest.raises(InvalidInputError, match="at least one"):
        push_watch_events(fresh.store, bad.iloc[0:0], fresh.lake)
    assert reader.profile_features("p1") == before


def test_generated_config_follows_settings(tmp_path: Path) -> None:
    sqlite = feature_store_config(Settings(home=tmp_path))
    assert sqlite["online_store"] == {"type": "sqlite", "path": str(tmp_path.resolve() / "feast" / "online.db")}
    assert sqlite["offline_store"] == {"type": "file"}
    redis = feature_store_config(Settings(home=tmp_path, feast_online="redis://:s3cret@cache:6380/2"), project="x")
    assert redis["online_store"] == {"type": "redis", "connection_string": "cache:6380,db=2,password=s3cret"}
    assert redis["project"] == "x"
    assert redis_connection_string("rediss://h") == "h:6379,ssl=true"
    with pytest.raises(InvalidInputError, match="redis://host:port"):
        redis_connection_string("redis://")


def test_direct_load_leaves_what_feasts_own_materialize_leaves(fresh: Built) -> None:
    from features.store import MATERIALIZE_START

    def everything() -> dict[str, dict[str, list[Any]]]:
        out = {}
        for service, key, view in (
            ("profile_v1", "profile_id", "profile_activity"),
            ("title_v1", "title_id", "title_metadata"),
        ):
            ids = sorted(pd.read_parquet(Path(fresh.store.repo_path) / "data" / f"{view}.parquet")[key].unique())
            rows = [{key: k} for k in ids]
            out[service] = fresh.store.get_online_features(fresh.store.get_feature_service(service), rows).to_dict()
        return out

    direct = everything()
    _, end = fresh.report.tables.window
    fresh.store.materialize(MATERIALIZE_START.to_pydatetime(), (end + pd.Timedelta(seconds=1)).to_pydatetime())
    feast = everything()
    for service, columns in direct.items():
        assert columns.keys() == feast[service].keys()
        for column, values in columns.items():
            assert len(values) > 10
            assert all(_same(a, b) for a, b in zip(values, feast[service][column], strict=True)), (service, column)


def test_an_unreachable_online_store_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    from core.errors import ServiceUnavailableError

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(home=tmp_path / "ws", feast_online=f"redis://127.0.0.1:{port}")
    reader = OnlineFeatureReader(open_store(settings, project=f"mqt{uuid.uuid4().hex[:10]}"))
    with pytest.raises(ServiceUnavailableError, match="MARQUEE_FEAST_ONLINE"):
        reader.profile_features("p1")


def test_the_push_loop_pushes_new_events_in_the_background_and_retries_after_a_failure(fresh: Built) -> None:
    from features.push import OnlinePushLoop

    reader = OnlineFeatureReader(fresh.store, check_interval_s=0, background_refresh=False)
    before = reader.profile_features("p1")["plays_total"]
    as_of = pd.Timestamp(fresh.report.tables.as_of)
    feed = [
        {"event_id": f"loop{i}", "profile_id": "p1", "title_id": "m3", "ts": as_of + pd.Timedelta(i + 1, "h"),
         "position_s": 5400, "duration_s": 5400}
        for i in range(2)
    ]  # fmt: skip
    broken = {"once": True}

    def fetch(mark: int) -> tuple[pd.DataFrame, pd.DataFrame, int]:
        if broken.pop("once", False):
            raise OSError("the API database is restarting")
        return pd.DataFrame(feed[mark:]), pd.DataFrame(feed[:mark]), len(feed)

    loop = OnlinePushLoop(fresh.store, fresh.lake, fetch, start=0, interval_s=0.05).start()
    try:
        deadline = time.monotonic() + 30
        while reader.profile_features("p1")["plays_total"] == before:
            assert time.monotonic() < deadline, "the loop never pushed"
            time.sleep(0.05)
    finally:
        loop.stop()
    assert loop.mark == 2 and not broken  # failed once, then pushed from the same mark
    assert reader.profile_features("p1")["plays_total"] >= before + 1


@pytest.mark.parametrize("fresh", ["sqlite"], indirect=True)
def test_the_online_push_consumer_pushes_events_from_the_stream(fresh: Built, nats_url: str, bus_topology: Any) -> None:
    """``marquee consume online-push``'s handler driven by the real stream; a garbled message is quarantined."""
    import asyncio
    import dataclasses

    from core.bus import EventKind, encode, run_consumer
    from features.bus_push import ONLINE_PUSH, OnlinePush
    from tests.bus.stream import publish, stream_messages

    reader = OnlineFeatureReader(fresh.store, check_interval_s=0, background_refresh=False)
    before = reader.profile_features("p1")["plays_total"]
    as_of = pd.Timestamp(fresh.report.tables.as_of).to_pydatetime()
    subject = bus_topology.subject(EventKind.WATCH)
    events = [
        (subject, f"bus{i}", encode({"event_id": f"bus{i}", "profile_id": "p1", "title_id": "m3",
                                     "ts": as_of + pd.Timedelta(i + 1, "h").to_pytimedelta(), "position_s": 5400,
                                     "duration_s": 5400, "device": "web", "country": "US"}))
        for i in range(2)
    ]  # fmt: skip
    publish(nats_url, bus_topology, [*events, (subject, "garbled", b"[1, 2")])
    handler = OnlinePush(fresh.store, fresh.lake)
    spec = dataclasses.replace(ONLINE_PUSH, ack_wait_s=2.0, fetch_timeout_s=0.5)

    stats = asyncio.run(run_consumer(nats_url, bus_topology, spec, handler, until_idle=True))

    assert (stats.handled, stats.quarantined, handler.pushed) == (2, 1, 2)
    assert reader.profile_features("p1")["plays_total"] == before + 1  # two heartbeats of one play
    quarantined = stream_messages(nats_url, bus_topology, bus_topology.quarantine_subject(EventKind.WATCH))
    assert [h["Marquee-Quarantine-Consumer"] for h, _ in quarantined] == ["online-push"]
