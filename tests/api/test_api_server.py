"""The done-when flow against a started server: `marquee serve api` as a real process, over HTTP.

A client signs up, creates a kids and an adult profile, searches, posts watch
events and gets a manifest; home rows are personalised (through a real HTTP
model-server double) and differ between the profiles; with the model server
stopped the kids profile gets fallback rows that still never exceed its level.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from core.lake import Lake
from core.settings import Settings

from .support import ModelServerDouble, ThreadedServer, catalog_frames, free_port, model_server_app

pytestmark = [pytest.mark.slow, pytest.mark.integration]

LEVELS = {t.title_id: t.maturity_level for t in catalog_frames()[0].itertuples()}


@pytest.fixture
def double_server(lake: Lake) -> Iterator[tuple[ModelServerDouble, ThreadedServer]]:
    double = ModelServerDouble(lake)
    with ThreadedServer(model_server_app(double)) as server:
        yield double, server


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
def api_url(
    request: pytest.FixtureRequest, settings: Settings, double_server: tuple[ModelServerDouble, ThreadedServer]
) -> Iterator[str]:
    """The started API: one process, and two uvicorn workers sharing the workspace (one exports events)."""
    port = free_port()
    env = {
        **os.environ,
        "MARQUEE_HOME": str(settings.home),
        "MARQUEE_SERVING_URL": double_server[1].url,
        "MARQUEE_LOG_LEVEL": "WARNING",
        "MARQUEE_EXPERIMENTS_DIR": str(settings.home / "experiments"),
    }
    process = subprocess.Popen(
        # No candidate cache: the end of the flow needs pages to notice the model server is gone at once.
        [
            *(sys.executable, "-m", "marquee", "serve", "api", "--port", str(port)),
            *("--export-every", "0.2", "--candidate-ttl", "0", "--workers", str(request.param)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"marquee serve api exited with {process.returncode}:\n{output}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("marquee serve api did not become ready in 60 s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _rows_ok(page: dict, level: int) -> list[str]:  # type: ignore[type-arg]
    ids = [item["title_id"] for row in page["rows"] for item in row["items"]]
    assert len(ids) == len(set(ids))
    assert all(LEVELS[t] <= level for t in ids), [t for t in ids if LEVELS[t] > level]
    return ids


def test_done_when_flow_over_http(
    api_url: str, double_server: tuple[ModelServerDouble, ThreadedServer], lake: Lake
) -> None:
    _, model_server = double_server
    with httpx.Client(base_url=api_url, timeout=10) as http:
        assert (
            http.post("/v1/auth/signup", json={"email": "fam@example.com", "password": "family pass 1"}).status_code
            == 201
        )
        tokens = http.post("/v1/auth/token", data={"username": "fam@example.com", "password": "family pass 1"}).json()
        http.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        kid = http.post("/v1/profiles", json={"name": "Kid", "is_kids": True}).json()["profile_id"]
        adult = http.post("/v1/profiles", json={"name": "Adult"}).json()["profile_id"]

        found = http.get("/v1/search", params={"q": "detectiv", "profile_id": adult}).json()["items"]
        assert found[0]["title_id"] in {"s_lane", "m_crime"}
        assert http.get("/v1/search", params={"q": "detectiv", "profile_id": kid}).json()["items"] == []

        for profile, title in ((adult, "m_crime"), (adult, "s_lane:1:1"), (kid, "m_robots")):
            body = {"event_id": f"{profile}-{title}", "title_id": title, "position_s": 600, "duration_s": 1000}
            assert http.post(f"/v1/profiles/{profile}/events", json=body).status_code == 201
            assert http.post(f"/v1/profiles/{profile}/events", json=body).status_code == 200  # retry

        manifest = http.get("/v1/playback/m_crime/manifest", params={"profile_id": adult, "format": "hls"})
        assert manifest.status_code == 200 and manifest.text.startswith("#EXTM3U")
        assert manifest.headers["x-resume-position"] == "600"
        assert http.get("/v1/playback/m_crime/manifest", params={"profile_id": kid}).status_code == 403

        # The server exports events to the lake every 0.2 s; the model server reads them from there.
        deadline = time.monotonic() + 10
        while True:
            pages = {p: http.get(f"/v1/profiles/{p}/home").json() for p in (kid, adult)}
            if all(page["source"] == "personalized" for page in pages.values()):
                break
            assert time.monotonic() < deadline, pages
            time.sleep(0.3)
        # Exported once each, also when two workers share the workspace (one of them holds the export lock).
        time.sleep(0.5)
        exported = lake.read("watch_events", ["event_id"])["event_id"].value_counts()
        assert sorted(exported.index) == sorted(f"{p}-{t}" for p, t in ((adult, "m_crime"), (adult, "s_lane:1:1"),
                                                                         (kid, "m_robots")))  # fmt: skip
        assert (exported == 1).all(), exported
        kid_ids = _rows_ok(pages[kid], 1)
        adult_ids = _rows_ok(pages[adult], 3)
        picks = {p: [i["title_id"] for i in page["rows"][1]["items"]] for p, page in pages.items()}
        assert pages[adult]["rows"][1]["key"] == "top_picks" and picks[kid] != picks[adult]
        assert kid_ids != adult_ids

        model_server.__exit__(None, None, None)  # the model server goes away
        for _ in range(5):
            response = http.get(f"/v1/profiles/{kid}/home")
            assert response.status_code == 200
            assert response.json()["source"] == "fallback"
            _rows_ok(response.json(), 1)
        assert http.post("/v1/auth/logout").status_code == 204
        assert http.get("/v1/profiles").status_code == 401
