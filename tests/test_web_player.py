"""The web page's player, in headless Chromium, against the real API, packager and nginx edges.

A title is packaged with ``media.package`` (ffmpeg: a generated 60 s clip, the
240p-480p ladder, CMAF segments shared by HLS and DASH) and served by an
nginx origin and two signing edges (``media.edge``), published in the workspace
as ``marquee serve edge`` does. The API runs under uvicorn in this process and
signs its manifests for those edges. The page signs up, opens the title and
presses Play; the tests read the <video> element, the stats the page shows and
the QoE sessions the API stored.

Needs Debian's chromium, ffmpeg, nginx and the bundled players (``make web``);
without them the tests skip, or fail under ``MARQUEE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import uvicorn
from conftest import REPO_ROOT, services_required

from catalog_api.app import create_app
from core.lake import Lake
from core.ports import free_port
from core.settings import Settings
from media import tools
from media.edge import build_cluster
from media.ladder import Rung
from media.library import EDGES_FILE, write_edges
from media.package import PackagingOptions, package_title
from media.signing import signed_query
from media.source import TitleSource

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VENDOR = REPO_ROOT / "catalog_api" / "web" / "static" / "vendor"
CLIP_ID = "t-clip"
CLIP_S = 60
#: A short ladder keeps the packaging quick (the 720p and 1080p encodes cost most of it); the
#: rungs are far enough apart that a throttled link affords only the lowest.
RUNGS = (Rung("240p", 426, 240, 400_000), Rung("360p", 640, 360, 800_000), Rung("480p", 854, 480, 1_400_000))
WAIT_MS = 20_000


def _need(ok: bool, message: str) -> None:
    if ok:
        return
    if services_required():
        pytest.fail(f"{message} and MARQUEE_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


def _catalog() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "title_id": [CLIP_ID],
            "type": ["movie"],
            "title": ["Test Pattern Symphony"],
            "synopsis": ["Colour bars and a tone, in three qualities."],
            "genres": [["Documentaries"]],
            "languages": [["en"]],
            "maturity_rating": ["PG"],
            "maturity_level": [1],
            "release_year": [2024],
            "date_added": [datetime(2024, 1, 1, tzinfo=UTC)],
            "duration_s": [CLIP_S],
            "cast": [["Ada Lane"]],
            "director": [["Cleo Park"]],
            "countries": [[]],
            "video_qualities": [["SD", "HD", "FHD"]],
            "tags": [[]],
        }
    )


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A workspace with the clip packaged and an origin + two signing edges published in it."""
    _need(CHROMIUM.exists(), f"{CHROMIUM} is missing; run `make browser`")
    missing = [tool for tool in ("ffmpeg", "nginx") if not tools.available(tool)]
    _need(not missing, f"{' and '.join(missing)} not installed (apt-get install ffmpeg nginx)")
    _need((VENDOR / "hls.min.js").exists(), "the web player is not bundled; run `make web`")
    settings = Settings(home=tmp_path_factory.mktemp("player") / "ws")
    settings.workspace.ensure()
    Lake(settings.workspace.lake_dir).write("titles", _catalog())
    clip = TitleSource(CLIP_ID, "Test Pattern Symphony", ("en",), look="action", duration_s=CLIP_S)
    options = PackagingOptions(ladder="fixed", rungs=RUNGS, preset="ultrafast")
    package_title(clip, settings.workspace.media_dir, options)
    cluster = build_cluster(
        settings.workspace.media_dir, settings.workspace.run_dir / "nginx", settings.cdn_signing_key
    )
    with cluster:
        write_edges(settings.workspace.run_dir / EDGES_FILE, cluster.records(), cluster.origin.url)
        yield settings


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    """The API (and the page) under uvicorn on a free port, signing manifests for the edges."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start in 60 s"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(api_url: str) -> Iterator[Any]:
    """A fresh browser page with a short buffer goal; fails the test on any uncaught page error."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        # An 8 s buffer goal: the player keeps fetching segments while the tests watch it adapt.
        context.add_init_script("localStorage.setItem('marquee.bufferSeconds', '8')")
        new_page = context.new_page()
        new_page.set_default_timeout(WAIT_MS)
        new_page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield new_page
        browser.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def _open_clip(page: Any, api_url: str, email: str) -> tuple[str, str]:
    """Sign up, make a profile and open the clip's page; returns (token, profile id)."""
    page.goto(api_url + "/")
    page.get_by_test_id("auth-toggle").click()
    page.get_by_test_id("auth-email").fill(email)
    page.get_by_test_id("auth-password").fill("correct horse battery")
    page.get_by_test_id("auth-submit").click()
    page.get_by_test_id("profile-name").fill("Robin")
    page.get_by_test_id("profile-create").click()
    page.get_by_test_id("row").first.wait_for(state="visible")
    page.locator(f"[data-testid=title-card][data-title-id={CLIP_ID}]").first.click()
    page.get_by_test_id("title-view").wait_for(state="visible")
    token = page.evaluate("() => sessionStorage.getItem('marquee.token')")
    profile_id = page.evaluate("() => JSON.parse(sessionStorage.getItem('marquee.profile')).profile_id")
    return token, profile_id


def _wait_playing_past(page: Any, seconds: float, timeout_ms: int = WAIT_MS) -> None:
    page.wait_for_function(f"() => document.getElementById('video').currentTime > {seconds}", timeout=timeout_ms)


def _height(page: Any) -> int:
    return int(page.get_by_test_id("stat-rendition").get_attribute("data-height") or 0)


def test_play_passes_three_seconds_and_reports_a_session(page: Any, api_url: str, tmp_path: Path) -> None:
    token, profile_id = _open_clip(page, api_url, "play@example.com")
    page.get_by_test_id("play-button").click()
    _wait_playing_past(page, 3.0)
    assert not page.evaluate("() => document.getElementById('video').paused")
    assert page.get_by_test_id("play-error").inner_text() == ""
    # The page shows what it plays: a rendition of the ladder, a buffer ahead, the startup time.
    page.wait_for_function("() => Number(document.getElementById('stat-rendition').dataset.height) > 0")
    assert _height(page) in {240, 360, 480}
    assert float(page.get_by_test_id("stat-buffer").get_attribute("data-seconds") or 0) > 0
    assert page.get_by_test_id("stat-startup").inner_text().endswith(" ms")
    page.screenshot(path=str(tmp_path / "player.png"))

    # Leaving the title ends the session: its totals reach the API.
    session_id = page.get_by_test_id("player-stats").get_attribute("data-session-id")
    page.get_by_test_id("title-back").click()
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 10
    while True:
        answer = httpx.get(f"{api_url}/v1/profiles/{profile_id}/playback-sessions", headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        stored = {s["session_id"]: s for s in answer.json()["items"]}
        if session_id in stored and stored[session_id]["ended"]:
            break
        assert time.monotonic() < deadline, f"session {session_id} not stored as ended: {stored}"
        time.sleep(0.2)
    session = stored[session_id]
    assert session["title_id"] == CLIP_ID
    assert session["format"] == "hls"
    assert 0 < session["startup_ms"] < 15_000
    assert session["played_s"] > 2.5
    assert session["avg_bitrate_kbps"] > 0
    assert session["fatal_error"] is None
    # ...and so did its progress heartbeat: the history (which resume reads) has the position.
    history = httpx.get(f"{api_url}/v1/profiles/{profile_id}/history", headers=headers, timeout=10).json()["items"]
    assert [(h["title_id"], h["position_s"] >= 2) for h in history] == [(CLIP_ID, True)]


def test_resumes_where_the_history_says(page: Any, api_url: str) -> None:
    token, profile_id = _open_clip(page, api_url, "resume@example.com")
    heartbeat = httpx.post(
        f"{api_url}/v1/profiles/{profile_id}/events",
        headers={"Authorization": f"Bearer {token}"},
        json={"event_id": "hb-resume", "title_id": CLIP_ID, "position_s": 20, "duration_s": CLIP_S, "device": "web"},
        timeout=10,
    )
    assert heartbeat.status_code == 201, heartbeat.text
    page.get_by_test_id("play-button").click()
    _wait_playing_past(page, 21.0)
    # Started at the resume position, not from 0 (it has not had time to play 20 s).
    started = page.evaluate("() => performance.now()")
    assert page.get_by_test_id("resume-position").get_attribute("data-seconds") == "20"
    assert started > 0


#: Once a second: (seconds since start, position, height shown, buffer ahead, hls.js bandwidth estimate kbit/s).
TIMELINE_JS = """() => {
  const t0 = performance.now();
  window.__timeline = [];
  setInterval(() => {
    const v = document.getElementById('video');
    const hls = window.marqueePlayer && window.marqueePlayer.hls;
    window.__timeline.push([Math.round((performance.now() - t0) / 1000), Math.round(v.currentTime), v.videoHeight,
      document.getElementById('stat-buffer').dataset.seconds, hls ? Math.round(hls.bandwidthEstimate / 1000) : null]);
  }, 1000);
}"""


def _wait_height(page: Any, condition: str, timeout_ms: int) -> None:
    """Wait until the shown rendition's height satisfies ``condition`` (e.g. ``>= 720``); say what happened if not."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            f"() => Number(document.getElementById('stat-rendition').dataset.height) {condition}", timeout=timeout_ms
        )
    except PlaywrightTimeout:
        timeline = page.evaluate("() => window.__timeline || []")
        pytest.fail(f"the rendition never became {condition}; (t, position, height, buffer): {timeline}")


def test_throttled_network_drops_the_rendition_and_it_climbs_back(page: Any, api_url: str) -> None:
    _open_clip(page, api_url, "throttle@example.com")
    page.evaluate(TIMELINE_JS)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    page.get_by_test_id("play-button").click()
    # Loopback is fast: the player climbs to the top rung.
    _wait_height(page, ">= 480", WAIT_MS)
    # 700 kbit/s: enough for the 240p rung (400 kbit/s), not for 360p and up.
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 40, "downloadThroughput": 700_000 / 8, "uploadThroughput": 700_000 / 8},
    )
    _wait_height(page, "< 480", 45_000)
    low = _height(page)
    # Lifted to a good home link (20 Mbit/s): hls.js weighs each bandwidth sample by its download
    # time, so an unthrottled loopback (a few ms per segment) would teach it almost nothing.
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 10, "downloadThroughput": 20e6 / 8, "uploadThroughput": 20e6 / 8},
    )
    _wait_height(page, f"> {low}", 45_000)
    assert _height(page) > low
    assert int(page.get_by_test_id("stat-switches").inner_text()) >= 2


def test_an_expired_url_shows_a_readable_error(page: Any, api_url: str, settings: Settings, tmp_path: Path) -> None:
    _open_clip(page, api_url, "expired@example.com")

    def expire(route: Any) -> None:
        """The API's manifest with every URL re-signed to have expired a minute ago (a stale tab)."""
        answer = route.fetch()
        body = answer.text()
        prefix = re.search(r"pfx=([^&\s\"<]+)", body)
        assert prefix, body[:300]
        stale = signed_query(prefix.group(1), settings.cdn_signing_key, int(time.time()) - 60)
        body = re.sub(r"md5=[^&\s\"<]+&(amp;)?expires=\d+&(amp;)?pfx=[^&\s\"<]+", stale.replace("&", "&\\1"), body)
        route.fulfill(response=answer, body=body)

    page.route("**/v1/playback/**", expire)
    page.get_by_test_id("play-button").click()
    page.wait_for_function("() => document.getElementById('play-error').textContent.length > 0")
    message = page.get_by_test_id("play-error").inner_text()
    page.screenshot(path=str(tmp_path / "player-expired.png"))
    assert "expired" in message
    assert page.get_by_test_id("player-overlay").is_visible()
    assert page.get_by_test_id("player-overlay").inner_text() == message
    # Not a frozen player: Play again fetches fresh URLs and plays.
    page.unroute("**/v1/playback/**")
    page.get_by_test_id("play-button").click()
    _wait_playing_past(page, 1.0)
    assert page.get_by_test_id("play-error").inner_text() == ""
    assert not page.get_by_test_id("player-overlay").is_visible()


def test_dash_plays_too(page: Any, api_url: str, tmp_path: Path) -> None:
    _open_clip(page, api_url, "dash@example.com")
    page.get_by_test_id("player-format").select_option("dash")
    page.get_by_test_id("play-button").click()
    _wait_playing_past(page, 3.0)
    assert page.get_by_test_id("manifest-text").text_content().lstrip().startswith("<?xml")
    page.wait_for_function("() => Number(document.getElementById('stat-rendition').dataset.height) > 0")
    assert page.get_by_test_id("play-error").inner_text() == ""
    page.screenshot(path=str(tmp_path / "player-dash.png"))
    # A DASH session reports its QoE like an HLS one.
    assert page.evaluate("() => window.marqueePlayer.stats().format") == "dash"
