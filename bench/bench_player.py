"""Benchmark of the web player: Play pressed -> first frame, in headless Chromium, on loopback.

What it does, in a temporary workspace:

1. the catalog: the real Netflix titles (``../shared/data/netflix-titles``) with a small
   synthetic viewing history, so the home page has rows of real titles;
2. media: the sample clip every unpackaged title streams (``media.package``, fixed
   240p-1080p ladder, 4 s CMAF segments), served by the nginx origin and two signing
   edges (``media.edge``), published in the workspace as ``marquee serve edge`` does;
3. the API under uvicorn, the page in Debian's Chromium (Playwright): sign up, make a
   profile, then ``--runs`` times per format: open a title from the home rows, press
   Play and read the player's own startup measure (Play click -> the <video>'s first
   ``playing`` event, ``performance.now()`` in the page), then go back.

Goal: first frame <= 1 s on loopback. Each run fetches a fresh signed manifest and
starts a new engine; the edges' caches are warm after the first run (as for a popular
title), so the first run of each format is reported on its own.

Usage: ``python bench/bench_player.py [--runs 5] [--screenshots DIR]``. ``--screenshots``
also saves the home page and the player (used for the docs). Exits non-zero only when
something could not run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from core.ports import free_port  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
CATALOG = REPO_ROOT / ".." / "shared" / "data" / "netflix-titles"


def _prepare(home: Path) -> Any:
    """Workspace with catalog, packaged sample clip; returns the settings."""
    from core.lake import Lake
    from core.settings import Settings
    from features.ingest.netflix import load_netflix_titles
    from features.ingest.synthetic import SyntheticConfig
    from media.library import SAMPLE_CONTENT_ID
    from media.package import PackagingOptions, package_title
    from media.source import TitleSource

    # No model server in this bench: the home rows are the popularity fallback (nothing listens there).
    settings = Settings(home=home, serving_url=f"http://127.0.0.1:{free_port()}")
    settings.workspace.ensure()
    lake = Lake(settings.workspace.lake_dir)
    load_netflix_titles(CATALOG, lake, SyntheticConfig(seed=7, scale=0.01))
    sample = TitleSource(SAMPLE_CONTENT_ID, "Marquee sample", ("en",), look="action", duration_s=30)
    started = time.perf_counter()
    package_title(sample, settings.workspace.media_dir, PackagingOptions(ladder="fixed", preset="ultrafast"))
    print(f"packaged the sample clip (30 s, 5 renditions) in {time.perf_counter() - started:.1f} s")
    return settings


def _serve_api(settings: Any) -> tuple[str, Any, threading.Thread]:
    import uvicorn

    from catalog_api.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the API did not start in 120 s")
        time.sleep(0.1)
    return f"http://127.0.0.1:{port}", server, thread


def _sign_up(page: Any, url: str) -> None:
    page.goto(url + "/")
    page.get_by_test_id("auth-toggle").click()
    page.get_by_test_id("auth-email").fill("bench@example.com")
    page.get_by_test_id("auth-password").fill("a long bench password")
    page.get_by_test_id("auth-submit").click()
    page.get_by_test_id("profile-name").fill("Robin")
    page.get_by_test_id("profile-create").click()
    page.get_by_test_id("row").first.wait_for(state="visible")


def _one_run(page: Any, fmt: str, card: int) -> float:
    """Open the ``card``-th title of the first row, press Play in ``fmt``; the startup in ms."""
    page.locator("[data-testid=row] [data-testid=title-card]").nth(card).click()
    page.get_by_test_id("title-view").wait_for(state="visible")
    page.get_by_test_id("player-format").select_option(fmt)
    before = page.evaluate("() => document.getElementById('video').dataset.sessionId || ''")
    page.get_by_test_id("play-button").click()
    # This Play's own session (the <video> element is reused), then its first frame.
    page.wait_for_function(
        "before => { const v = document.getElementById('video');"
        " return v.dataset.sessionId !== before && v.dataset.startupMs; }",
        arg=before,
        timeout=30_000,
    )
    startup = float(page.evaluate("() => document.getElementById('video').dataset.startupMs"))
    page.wait_for_function("() => document.getElementById('video').currentTime > 0.5", timeout=30_000)
    return startup


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="Play presses per format")
    parser.add_argument("--screenshots", type=Path, default=None, help="save home and player screenshots here")
    args = parser.parse_args()
    from media import tools

    missing = [t for t in ("ffmpeg", "nginx") if not tools.available(t)]
    vendor = REPO_ROOT / "catalog_api" / "web" / "static" / "vendor" / "hls.min.js"
    if missing or not CHROMIUM.exists() or not vendor.exists():
        print(f"cannot run: needs ffmpeg, nginx, {CHROMIUM} and `make web` (missing: {missing or 'players'})")
        return 1
    if not (CATALOG / "netflix_titles.csv").is_file():
        print(f"cannot run: the Netflix catalog is missing ({CATALOG})")
        return 1
    from playwright.sync_api import sync_playwright

    from media.edge import build_cluster
    from media.library import EDGES_FILE, write_edges

    with tempfile.TemporaryDirectory(prefix="bench-player-") as tmp:
        settings = _prepare(Path(tmp) / "ws")
        cluster = build_cluster(
            settings.workspace.media_dir, settings.workspace.run_dir / "nginx", settings.cdn_signing_key
        )
        with cluster:
            write_edges(settings.workspace.run_dir / EDGES_FILE, cluster.records(), cluster.origin.url)
            url, server, thread = _serve_api(settings)
            results: dict[str, list[float]] = {"hls": [], "dash": []}
            try:
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                    page = browser.new_page(viewport={"width": 1280, "height": 860})
                    page.set_default_timeout(30_000)
                    _sign_up(page, url)
                    if args.screenshots:
                        args.screenshots.mkdir(parents=True, exist_ok=True)
                        page.wait_for_timeout(500)
                        page.screenshot(path=str(args.screenshots / "web-home.png"))
                    for run in range(args.runs):
                        for fmt in ("hls", "dash"):
                            results[fmt].append(_one_run(page, fmt, run % 6))
                            if args.screenshots and run == 0 and fmt == "hls":
                                page.wait_for_function("() => document.getElementById('video').currentTime > 4")
                                page.screenshot(path=str(args.screenshots / "web-player.png"))
                            page.get_by_test_id("title-back").click()
                            page.get_by_test_id("home-view").wait_for(state="visible")
                    browser.close()
            finally:
                server.should_exit = True
                thread.join(timeout=10)
    print()
    print("Play -> first frame (ms), headless Chromium, loopback, nginx edges, 240p-1080p ladder")
    print(f"{'format':<8}{'runs':>6}{'first run':>11}{'median':>9}{'p90':>8}{'max':>8}")
    for fmt, values in results.items():
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
        print(
            f"{fmt:<8}{len(values):>6}{values[0]:>11.0f}{statistics.median(values):>9.0f}{p90:>8.0f}{max(values):>8.0f}"
        )
    for fmt, values in results.items():
        print(f"  {fmt} runs (ms): {', '.join(f'{v:.0f}' for v in values)}")
    worst = max(statistics.median(v) for v in results.values())
    print(f"goal <= 1000 ms (median): {'met' if worst <= 1000 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
