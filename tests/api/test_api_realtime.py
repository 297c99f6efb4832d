"""Done when (issue 14): a watch shapes the very next page, against both started servers.

``marquee serve models`` (real BentoML, real fitted item-kNN from the small
serving world) and ``marquee serve api`` run as processes on one workspace. A
new profile posts three completed watches and its next page is personalised
from them, with nothing it completed on it; a kids profile never sees a title
above its level; with the lake export off the same holds (the viewer travels
in every request, nothing waits for the lake); a profile created with
onboarding titles is personalised on its first page.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import test_serving_world as world

from core.settings import Settings
from tests.started_servers import start, stop, wait_ready, world_env

from .support import free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO_ROOT = Path(__file__).resolve().parents[2]
LEVELS = dict(zip(world.titles_frame()["title_id"], world.titles_frame()["maturity_level"], strict=True))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path, dict[str, str]]]:
    """One workspace with the small serving world's lake and a registered champion, and a started model server."""
    tmp = tmp_path_factory.mktemp("realtime")
    settings = Settings(home=tmp / "home")
    settings.workspace.ensure()
    world.write_lake(settings)
    world.register(settings, world.build_bundle(), tmp)
    port = free_port()
    env = world_env(settings.workspace.home, tmp, port)
    command = [sys.executable, "-m", "marquee", "serve", "models", "--port", str(port), "--poll", "0.5"]
    log = tmp / "models.log"
    models = start(command, env, log)
    try:
        wait_ready(env["MARQUEE_SERVING_URL"], models, log, in_a_row=8)
        yield settings, tmp, env
    finally:
        stop(models)


@pytest.fixture(params=[0.2, 0.0], ids=["lake-export-on", "lake-export-off"])
def api(request: pytest.FixtureRequest, workspace: tuple[Settings, Path, dict[str, str]]) -> Iterator[str]:
    """``marquee serve api`` on the workspace, with the lake export every 0.2 s or switched off."""
    _, tmp, env = workspace
    port = free_port()
    command = [sys.executable, "-m", "marquee", "serve", "api", "--port", str(port),
               "--export-every", str(request.param), "--row-size", "3"]  # fmt: skip
    log = tmp / f"api-{request.param}.log"
    process = start(command, env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log, in_a_row=1)
        yield url
    finally:
        stop(process)


def _login(http: httpx.Client) -> None:
    email = f"viewer-{time.monotonic_ns()}@example.com"
    assert http.post("/v1/auth/signup", json={"email": email, "password": "viewer pass 1"}).status_code == 201
    token = http.post("/v1/auth/token", data={"username": email, "password": "viewer pass 1"}).json()
    http.headers["Authorization"] = f"Bearer {token['access_token']}"


def _watch_to_the_end(http: httpx.Client, profile: str, titles: list[str]) -> None:
    for title in titles:
        body = {"event_id": f"{profile}-{title}", "title_id": title, "position_s": 6000, "duration_s": 6000}
        assert http.post(f"/v1/profiles/{profile}/events", json=body).status_code == 201


def _rows(page: dict[str, Any]) -> dict[str, list[str]]:
    return {row["key"]: [item["title_id"] for item in row["items"]] for row in page["rows"]}


def test_three_watches_shape_the_very_next_page(api: str) -> None:
    with httpx.Client(base_url=api, timeout=10) as http:
        _login(http)
        adult = http.post("/v1/profiles", json={"name": "Adult"}).json()["profile_id"]
        first = http.get(f"/v1/profiles/{adult}/home").json()
        assert first["source"] == "fallback" and first["fallback_reason"] == "new_profile"
        assert "until you watch something" in first["notice"]
        popular = _rows(first)["top_picks"]

        watched = ["a2", "a3", "a4"]
        _watch_to_the_end(http, adult, watched)
        page = http.get(f"/v1/profiles/{adult}/home").json()  # the very next page, no waiting
        rows = _rows(page)
        assert page["source"] == "personalized", page
        assert page["notice"] is None and "unavailable" not in str(page)
        assert rows["top_picks"] != [t for t in popular if t not in watched], rows
        # The adult titles its neighbours watched with these three come first (then the family titles).
        assert set(rows["top_picks"][:2]) == {"a1", "a5"}, rows
        assert rows.get("because_you_watched:a4"), rows  # the latest title seeds it
        shown = [t for ids in rows.values() for t in ids]
        assert not set(shown) & set(watched), rows
        assert "fr1" not in shown  # licensed in France only

        kid = http.post("/v1/profiles", json={"name": "Kid", "is_kids": True}).json()["profile_id"]
        _watch_to_the_end(http, kid, ["k1", "k2", "k3"])
        kid_page = http.get(f"/v1/profiles/{kid}/home").json()
        kid_rows = _rows(kid_page)
        kid_shown = [t for ids in kid_rows.values() for t in ids]
        assert kid_page["source"] == "personalized", kid_page
        # Only k4 and k5 are left for it in this small world: Top Picks takes both.
        assert kid_rows["top_picks"] == ["k4", "k5"] or kid_rows["top_picks"] == ["k5", "k4"], kid_rows
        assert kid_shown and all(LEVELS[t] <= 1 for t in kid_shown), kid_rows
        assert not set(kid_shown) & {"k1", "k2", "k3"}


def test_onboarding_titles_personalise_the_first_page(api: str) -> None:
    with httpx.Client(base_url=api, timeout=10) as http:
        _login(http)
        bad = http.post("/v1/profiles", json={"name": "Typo", "liked_titles": ["nope"]})
        assert bad.status_code in (400, 422) and "nope" in bad.text
        kid_adult_title = http.post("/v1/profiles", json={"name": "K", "is_kids": True, "liked_titles": ["a1"]})
        assert kid_adult_title.status_code in (400, 422) and "not available" in kid_adult_title.text

        created = http.post("/v1/profiles", json={"name": "Fan", "liked_titles": ["a3", "a2"]})
        assert created.status_code == 201, created.text
        profile = created.json()["profile_id"]
        page = http.get(f"/v1/profiles/{profile}/home").json()
        rows = _rows(page)
        assert page["source"] == "personalized", page
        assert "because_you_watched:a3" in rows, rows  # the first title named counts as the latest
        assert not {"a2", "a3"} & {t for ids in rows.values() for t in ids}
