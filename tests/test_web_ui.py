"""The web page, driven in headless Chromium against a real API process.

``marquee serve api`` (a real uvicorn process) serves the API on a free port
with a temporary workspace whose lake holds a small catalog; no model server
runs, so the home rows come from the popularity fallback. The browser signs up through the page, creates a
profile, checks the rows, searches as it types, opens a title and presses Play,
which must show the HLS manifest. A screenshot is saved under ``tmp_path``.

Chromium is Debian's package (``make browser`` installs it); without it the
tests skip, or fail under ``MARQUEE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from conftest import REPO_ROOT, services_required

from core.lake import Lake
from core.ports import free_port
from core.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000

#: A small catalog with a known right answer for search: only one title says "zebra".
CATALOG = [
    ("t-zebra", "Zebra Crossing", ["Comedies"], "A city comedy about a crossing guard and a lost zebra."),
    ("t-ocean", "Ocean Depths", ["Documentaries"], "Life at the bottom of the sea."),
    ("t-night", "Night Shift", ["Thrillers"], "A nurse sees too much on the night shift."),
    ("t-star", "Starbound", ["Sci-Fi"], "A crew chases a signal past the last star."),
    ("t-garden", "The Secret Garden Club", ["Dramas"], "Neighbours restore a forgotten garden."),
    ("t-chef", "Kitchen Wars", ["Reality TV"], "Chefs compete over one weekend."),
    ("t-ghost", "Ghost Harbor", ["Horror"], "A fishing town and its drowned bell."),
    ("t-race", "Final Lap", ["Sports"], "A driver's last season."),
]

#: One series with two episodes: Play on the series streams its first episode.
SERIES = ("t-light", "Lighthouse Keepers", ["Dramas"], "Two keepers, one island, a long winter.")
EPISODES = [("t-light-s1e1", 1, "Arrival", 2700), ("t-light-s1e2", 2, "The Storm", 2820)]


def _catalog_frame() -> pd.DataFrame:
    added = datetime(2024, 1, 1, tzinfo=UTC)
    entries = [*CATALOG, SERIES]
    return pd.DataFrame(
        {
            "title_id": [c[0] for c in entries],
            "type": ["movie"] * len(CATALOG) + ["series"],
            "title": [c[1] for c in entries],
            "synopsis": [c[3] for c in entries],
            "genres": [c[2] for c in entries],
            "languages": [["en"]] * len(entries),
            "maturity_rating": ["PG"] * len(entries),
            "maturity_level": [1] * len(entries),
            "release_year": [2015 + i for i in range(len(entries))],
            "date_added": [added] * len(entries),
            "duration_s": [5400 + 60 * i for i in range(len(CATALOG))] + [None],
            "cast": [["Ada Lane", "Ben Cole"]] * len(entries),
            "director": [["Cleo Park"]] * len(entries),
            "countries": [[]] * len(entries),
            "video_qualities": [["SD", "HD"]] * len(entries),
            "tags": [[]] * len(entries),
        }
    )


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    message = f"{CHROMIUM} is missing; run `make browser` (as root: apt-get install chromium)"
    if services_required():
        pytest.fail(f"{message} and MARQUEE_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real uvicorn process serving the API (and the page) on a free port."""
    home = tmp_path_factory.mktemp("web") / "ws"
    settings = Settings(home=home)
    settings.workspace.ensure()
    lake = Lake(settings.workspace.lake_dir)
    lake.write("titles", _catalog_frame())
    lake.write(
        "episodes",
        pd.DataFrame(
            {
                "episode_id": [e[0] for e in EPISODES],
                "series_id": [SERIES[0]] * len(EPISODES),
                "season_number": [1] * len(EPISODES),
                "episode_number": [e[1] for e in EPISODES],
                "title": [e[2] for e in EPISODES],
                "duration_s": [e[3] for e in EPISODES],
            }
        ),
    )
    port = free_port()
    env = {
        **os.environ,
        "MARQUEE_HOME": str(home),
        # Nothing listens there: the page must still get popularity rows.
        "MARQUEE_SERVING_URL": f"http://127.0.0.1:{free_port()}",
        "OPENBLAS_NUM_THREADS": "1",
    }
    env.pop("MARQUEE_DATABASE_URL", None)
    log = (home / "api.log").open("w")
    # `marquee serve api`: the command a person runs, a real uvicorn process; settings come from the environment.
    command = [sys.executable, "-m", "marquee.cli", "serve", "api", "--port", str(port), "--export-every", "0"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the API exited with {process.returncode}:\n{(home / 'api.log').read_text()}")
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the API did not start in 60 s:\n{(home / 'api.log').read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def page(chromium_path: Path) -> Iterator[Any]:
    """A fresh browser page; fails the test on any uncaught page error."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        new_page = context.new_page()
        new_page.set_default_timeout(WAIT_MS)
        new_page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield new_page
        browser.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def _sign_up(page: Any, api_url: str, email: str, password: str) -> None:
    page.goto(api_url + "/")
    page.get_by_test_id("auth-view").wait_for(state="visible")
    page.get_by_test_id("auth-toggle").click()
    page.get_by_test_id("auth-email").fill(email)
    page.get_by_test_id("auth-password").fill(password)
    page.get_by_test_id("auth-submit").click()
    page.get_by_test_id("profiles-view").wait_for(state="visible")


def test_rows_search_title_and_playback(page: Any, api_url: str, tmp_path: Path) -> None:
    _sign_up(page, api_url, "viewer@example.com", "correct horse battery")

    # A new account has no profile yet: create one, which opens its home page.
    assert page.get_by_test_id("profile-tile").count() == 0
    page.get_by_test_id("profile-name").fill("Robin")
    page.get_by_test_id("profile-create").click()
    page.get_by_test_id("home-view").wait_for(state="visible")
    page.get_by_test_id("row").first.wait_for(state="visible")

    # Rows render with title cards from our catalog (fallback rows: no model server).
    rows = page.get_by_test_id("row")
    assert rows.count() >= 1
    catalog_ids = {c[0] for c in [*CATALOG, SERIES]}
    shown = set(
        page.locator("[data-testid=row] [data-testid=title-card]").evaluate_all(
            "cards => cards.map(c => c.dataset.titleId)"
        )
    )
    assert shown and shown <= catalog_ids
    assert page.get_by_test_id("current-profile").inner_text() == "Robin"
    # No model server runs: the page says the rows are the popularity fallback.
    assert page.get_by_test_id("home-source").get_attribute("data-source") == "fallback"
    assert "Popular picks" in page.get_by_test_id("home-source").inner_text()

    # Search as you type: typing key by key (debounced) ends on the one matching title,
    # with fewer requests than keystrokes.
    searches: list[str] = []
    page.on("request", lambda request: searches.append(request.url) if "/v1/search" in request.url else None)
    page.get_by_test_id("search-input").press_sequentially("zebra", delay=40)
    page.get_by_test_id("search-view").wait_for(state="visible")
    page.wait_for_function("() => document.getElementById('search-query').textContent === 'zebra'")
    results = page.locator("[data-testid=search-results] [data-testid=title-card]")
    results.first.wait_for(state="visible")
    assert results.evaluate_all("cards => cards.map(c => c.dataset.titleId)") == ["t-zebra"]
    # 5 keystrokes 40 ms apart, 250 ms debounce: one request (more only on a starved machine).
    assert 1 <= len(searches) < len("zebra"), searches
    assert "q=zebra&" in searches[-1] or searches[-1].endswith("q=zebra")

    # Open the title: the detail view shows its name and synopsis.
    results.first.click()
    page.get_by_test_id("title-view").wait_for(state="visible")
    assert page.get_by_test_id("title-name").inner_text() == "Zebra Crossing"
    assert "lost zebra" in page.get_by_test_id("title-synopsis").inner_text()

    # Play fetches the HLS manifest and shows it, with the resume position.
    page.get_by_test_id("play-button").click()
    page.get_by_test_id("player").wait_for(state="visible")
    manifest = page.get_by_test_id("manifest-text").inner_text()
    assert manifest.startswith("#EXTM3U"), manifest[:200]
    assert page.get_by_test_id("resume-position").inner_text()

    assert page.get_by_test_id("resume-position").get_attribute("data-seconds") == "0"

    # Half an hour watched (a heartbeat through the API, as a player sends it): Play now resumes there.
    token = page.evaluate("() => sessionStorage.getItem('marquee.token')")
    profile_id = page.evaluate("() => JSON.parse(sessionStorage.getItem('marquee.profile')).profile_id")
    heartbeat = httpx.post(
        f"{api_url}/v1/profiles/{profile_id}/events",
        headers={"Authorization": f"Bearer {token}"},
        json={"event_id": "hb-1", "title_id": "t-zebra", "position_s": 1800, "duration_s": 5400, "device": "web"},
        timeout=10,
    )
    assert heartbeat.status_code == 201, heartbeat.text
    page.get_by_test_id("play-button").click()
    page.wait_for_function("() => document.getElementById('resume-position').dataset.seconds === '1800'")
    assert page.get_by_test_id("resume-position").inner_text() == "Resuming at 30:00"

    shot = tmp_path / "web-ui.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    # Back from the title returns to the search results; a reload keeps the session, and the
    # home page now leads with Continue Watching holding the title we started.
    page.get_by_test_id("title-back").click()
    page.get_by_test_id("search-view").wait_for(state="visible")
    # Escape in the search box clears it and returns home.
    page.get_by_test_id("search-input").press("Escape")
    page.get_by_test_id("home-view").wait_for(state="visible")
    assert page.get_by_test_id("search-input").input_value() == ""
    page.reload()
    page.get_by_test_id("home-view").wait_for(state="visible")
    continuing = page.locator("[data-testid=row][data-row-key=continue_watching] [data-testid=title-card]")
    continuing.first.wait_for(state="visible")
    assert continuing.evaluate_all("cards => cards.map(c => c.dataset.titleId)") == ["t-zebra"]
    page.screenshot(path=str(tmp_path / "web-home.png"), full_page=True)

    # The profile picker lists the profile we made; picking it opens its home page again.
    page.get_by_test_id("switch-profile").click()
    tiles = page.get_by_test_id("profile-tile")
    tiles.first.wait_for(state="visible")
    assert tiles.count() == 1
    assert tiles.first.get_attribute("data-profile-id") == profile_id
    assert "Robin" in tiles.first.inner_text()
    tiles.first.click()
    page.get_by_test_id("row").first.wait_for(state="visible")


def test_a_series_lists_its_episodes_and_plays_each(page: Any, api_url: str, tmp_path: Path) -> None:
    _sign_up(page, api_url, "series@example.com", "a long enough password")
    page.get_by_test_id("profile-name").fill("Sam")
    page.get_by_test_id("profile-create").click()
    page.get_by_test_id("row").first.wait_for(state="visible")
    page.get_by_test_id("search-input").press_sequentially("lighthouse", delay=20)
    hit = page.locator(f"[data-testid=search-results] [data-title-id={SERIES[0]}]")
    hit.wait_for(state="visible")
    hit.click()
    page.get_by_test_id("title-view").wait_for(state="visible")
    assert page.get_by_test_id("title-name").inner_text() == SERIES[1]
    assert "1 season" in page.get_by_test_id("title-meta").inner_text()

    episodes = page.get_by_test_id("episode")
    assert episodes.evaluate_all("items => items.map(e => e.dataset.episodeId)") == [e[0] for e in EPISODES]
    assert "The Storm" in episodes.nth(1).inner_text()

    # Play on the series streams its first episode; an episode plays itself.
    page.get_by_test_id("play-button").click()
    page.get_by_test_id("player").wait_for(state="visible")
    assert f"Content {EPISODES[0][0]}" in page.get_by_test_id("manifest-url").inner_text()
    episodes.nth(1).click()
    page.wait_for_function(
        f"() => document.getElementById('manifest-url').textContent.includes('Content {EPISODES[1][0]}')"
    )
    assert page.get_by_test_id("manifest-text").inner_text().startswith("#EXTM3U")
    page.screenshot(path=str(tmp_path / "web-series.png"), full_page=True)


def test_wrong_password_is_shown_on_the_form(page: Any, api_url: str) -> None:
    _sign_up(page, api_url, "second@example.com", "a good long password")
    page.get_by_test_id("logout").click()
    page.get_by_test_id("auth-view").wait_for(state="visible")
    page.get_by_test_id("auth-email").fill("second@example.com")
    page.get_by_test_id("auth-password").fill("not the password")
    page.get_by_test_id("auth-submit").click()
    error = page.get_by_test_id("auth-error")
    error.wait_for(state="visible")
    page.wait_for_function("() => document.getElementById('auth-error').textContent.length > 0")
    text = error.inner_text()
    assert text and "Traceback" not in text
    assert page.get_by_test_id("auth-view").is_visible()


def test_too_short_password_is_refused_before_any_request(page: Any, api_url: str) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(api_url + "/")
    page.get_by_test_id("auth-toggle").click()
    page.get_by_test_id("auth-email").fill("short@example.com")
    page.get_by_test_id("auth-password").fill("short")
    page.get_by_test_id("auth-submit").click()
    page.wait_for_function("() => document.getElementById('auth-error').textContent.length > 0")
    assert "8 characters" in page.get_by_test_id("auth-error").inner_text()
    assert not [url for url in requests if "/v1/" in url]
