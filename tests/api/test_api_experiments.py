"""Experiment administration: admin only, validated definitions, status changes reach assignment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from catalog_api.options import ApiOptions

from .support import make_profile, signup_and_login, watch

ADMIN = {"Authorization": "Bearer admin-token-for-tests-0123456789"}


def _definition(profile_id: str) -> dict[str, object]:
    return {
        "key": "layout-admin-test",
        "layer": "home",
        "allocation": 100,
        "variants": [
            {"name": "control", "weight": 50, "payload": {"layout": "default"}},
            {"name": "trending", "weight": 50, "payload": {"layout": "trending_first"}},
        ],
        "forced": {profile_id: "trending"},
    }


def test_experiment_admin_routes(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    options = ApiOptions(admin_token=ADMIN["Authorization"].split()[1], experiments_dir=tmp_path / "exp", row_size=6)
    client = make_client(options=options)
    user = signup_and_login(client, "user@example.com")
    profile = make_profile(client, user, "A")["profile_id"]
    watch(client, user, profile, "m_space", 0.5)
    assert client.get("/v1/experiments").status_code == 401
    assert client.get("/v1/experiments", headers=user).status_code == 403  # not an admin account
    assert client.get("/v1/experiments", headers=ADMIN).json() == []
    bad = client.post("/v1/experiments", json={**_definition(profile), "variants": "nope"}, headers=ADMIN)
    assert bad.status_code == 422
    created = client.post("/v1/experiments", json=_definition(profile), headers=ADMIN)
    assert created.status_code == 201 and created.json()["status"] == "draft"
    assert client.post("/v1/experiments", json=_definition(profile), headers=ADMIN).status_code == 409
    assert client.get("/v1/experiments/layout-admin-test", headers=ADMIN).json()["key"] == "layout-admin-test"
    assert client.get("/v1/experiments/nope", headers=ADMIN).status_code == 404
    # A forced unit sees its variant already in draft (QA); running keeps it; stopped ends it.
    assert client.get(f"/v1/profiles/{profile}/home", headers=user).json()["experiment"]["layout"] == "trending_first"
    started = client.put("/v1/experiments/layout-admin-test/status", json={"status": "running"}, headers=ADMIN)
    assert started.status_code == 200 and started.json()["status"] == "running"
    page = client.get(f"/v1/profiles/{profile}/home", headers=user).json()
    assert page["experiment"]["layout"] == "trending_first"
    assert [row["key"] for row in page["rows"]][:2] == ["continue_watching", "trending"]
    keys = [row["key"] for row in page["rows"]]
    assert len(keys) == len(set(keys))
    stopped = client.put("/v1/experiments/layout-admin-test/status", json={"status": "stopped"}, headers=ADMIN)
    assert stopped.json()["status"] == "stopped"
    assert client.get(f"/v1/profiles/{profile}/home", headers=user).json()["experiment"]["layout"] == "default"
    state = client.app.state.marquee  # type: ignore[attr-defined]
    assert state.exposures.flush() > 0  # the lake accepts the pages' exposure rows (unique keys)
    bad_status = client.put("/v1/experiments/layout-admin-test/status", json={"status": "paused"}, headers=ADMIN)
    assert bad_status.status_code == 422


def test_definitions_are_parsed_again_only_when_a_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``refresh_s`` the bridge looks at the files; it parses them only when one changed."""
    import shutil

    from catalog_api.services.experiments import ExperimentBridge
    from experiments.definitions import DEFAULT_DIR

    folder = tmp_path / "experiments"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    bridge = ExperimentBridge(folder, refresh_s=0.0)
    parses: list[int] = []
    parse = bridge.store.list
    monkeypatch.setattr(bridge.store, "list", lambda: parses.append(1) or parse())
    first = bridge.experiments()
    assert first and bridge.experiments() is first and len(parses) == 1  # nothing changed: not parsed again
    layout = next(folder.glob("home_layout.*"))
    layout.write_text(layout.read_text() + "\n# edited\n")
    assert len(bridge.experiments()) == len(first) and len(parses) == 2  # an edited file is parsed again
    (folder / "extra.yaml").write_text("")
    bridge.experiments()
    assert len(parses) == 3  # so is a new file
    bridge.invalidate()
    bridge.experiments()
    assert len(parses) == 4  # and an admin change forgets the cache
