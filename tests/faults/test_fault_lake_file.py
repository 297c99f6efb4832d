"""Fault: a corrupted data file in the lake (issue 16, Deliver 4: "a corrupted ... lake file").

One of the files that make up a table (``Lake.parts``, whatever the table format
keeps them as) is damaged on disk, for real: truncated (a write cut short) or
with its middle overwritten (a bad block). Each reader must say which file, and
what it served before must keep serving:

- the API's popularity refresh keeps the previous table (home pages unchanged,
  no 5xx) and logs the error naming the file; new watch events still export;
- the model server, asked to load a new model version, keeps the old one and
  names the file in ``last_error`` (``/readyz``);
- training stops with an error naming the file (the registered model serves on).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import test_serving_world as world
from fastapi.testclient import TestClient

from catalog_api.app import create_app, export_events_now
from catalog_api.options import ApiOptions
from core.errors import LakeFileError
from core.lake import Lake
from core.settings import Settings
from serving.loader import ModelLoader
from tests.api.support import fill_lake, free_port, make_profile, signup_and_login, watch
from training.data import load_events


def _local(uri: str) -> Path:
    """A data file of a local lake as a path (``Lake.parts`` lists URIs)."""
    return Path(uri.removeprefix("file://"))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle - 200 : middle + 200] = b"\xde\xad\xbe\xef" * 100  # same length, footer intact
    path.write_bytes(bytes(data))


DAMAGE: dict[str, Callable[[Path], None]] = {"truncated": _truncate, "garbled": _garble}


def _events(n: int, start: int = 0) -> pd.DataFrame:
    now = pd.Timestamp.now(tz="UTC").floor("ms")
    return pd.DataFrame(
        {
            "event_id": [f"e{start + i}" for i in range(n)],
            "profile_id": [f"p{i % 7}" for i in range(n)],
            "title_id": ["m_space" if i % 3 else "m_laugh" for i in range(n)],
            "ts": [now - pd.Timedelta(minutes=i) for i in range(n)],
            "position_s": [600] * n,
            "duration_s": [600] * n,
            "device": ["tv"] * n,
        }
    )


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_popularity_keeps_its_table_and_names_the_file(
    settings: Settings, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    lake = fill_lake(settings)
    lake.write("watch_events", _events(400), mode="append")
    lake.write("watch_events", _events(400, start=400), mode="append")
    options = ApiOptions(row_size=6, popularity_refresh_s=3600)
    with TestClient(
        create_app(settings.model_copy(update={"serving_url": f"http://127.0.0.1:{free_port()}"}), options)
    ) as client:
        state = client.app.state.marquee  # type: ignore[attr-defined]
        headers = signup_and_login(client, "lake-file@example.com")
        profile = make_profile(client, headers, "P")["profile_id"]
        before = client.get(f"/v1/profiles/{profile}/home", headers=headers)
        assert before.status_code == 200
        table = state.popularity.table
        assert table.plays  # built from the lake's events

        victim = _local(lake.parts("watch_events")[-1])
        DAMAGE[damage](victim)
        # The refresh reads only increments; a full read (after an erasure, or a vacuumed
        # version) is what touches the old, damaged file: force one.
        state.popularity._lake_version = None
        with caplog.at_level(logging.ERROR):
            assert state.popularity.refresh() is table  # the previous table keeps serving
        assert str(victim) in caplog.text, caplog.text  # the log names the damaged file
        after = client.get(f"/v1/profiles/{profile}/home", headers=headers)
        assert after.status_code == 200
        assert [r["key"] for r in after.json()["rows"]] == [r["key"] for r in before.json()["rows"]]

        # New events are still acknowledged and exported (appending reads no old file).
        assert watch(client, headers, profile, "m_space", 0.5, event_id="after-damage").status_code == 201
        assert export_events_now(state) == 1
        readable = [p for p in map(_local, lake.parts("watch_events")) if p != victim]
        assert "after-damage" in set(pd.concat(pd.read_parquet(p) for p in readable)["event_id"])


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_training_stops_with_an_error_naming_the_file(settings: Settings, damage: str) -> None:
    lake = Lake(settings.workspace.lake_dir)
    lake.write("watch_events", _events(300), mode="append")
    lake.write("watch_events", _events(300, start=300), mode="append")
    victim = _local(lake.parts("watch_events")[0])
    DAMAGE[damage](victim)
    with pytest.raises(LakeFileError) as raised:
        load_events(lake)
    assert str(victim) in str(raised.value) and "watch_events" in str(raised.value)


def test_the_model_server_keeps_its_version_when_the_catalog_file_is_damaged(
    settings: Settings, tmp_path: Path
) -> None:
    world.write_lake(settings)
    world.register(settings, world.build_bundle(), tmp_path)
    loader = ModelLoader(settings, poll_s=0, use_online_features=False)
    assert loader.refresh() is True and loader.get().version == "1"
    victim = _local(Lake(settings.workspace.lake_dir).parts("titles")[0])
    _garble(victim)
    version = world.register(settings, world.build_bundle("als"), tmp_path)  # a new champion to load
    assert loader.refresh() is False
    assert loader.get().version == "1"  # the old version serves on
    error = loader.last_error or ""
    assert f"version {version}" in error and str(victim) in error, error
