"""Take the README's screenshot of the web page: ``python -m docsgen.screenshot``.

Loads the Netflix catalog into a throw-away workspace, starts ``marquee serve api``
on a free port (no model server: the rows are the popularity fallback), signs up
in Debian's Chromium through Playwright, creates a profile and saves the home page.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from core.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalog", type=Path, default=ROOT.parent / "shared/data/netflix-titles/netflix_titles.csv")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/img/web.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="marquee-shot-") as tmp:
        env = {
            **os.environ,
            "MARQUEE_HOME": str(Path(tmp) / "ws"),
            "MARQUEE_SERVING_URL": f"http://127.0.0.1:{free_port()}",
            "PYTHONPATH": str(ROOT),
        }
        cli = [sys.executable, "-m", "marquee.cli"]
        subprocess.run(
            [*cli, "data", "load", "netflix", str(args.catalog), "--history", "--scale", "0.02"],
            env=env,
            check=True,
            cwd=tmp,
        )
        port = free_port()
        server = subprocess.Popen([*cli, "serve", "api", "--port", str(port), "--export-every", "0"], env=env, cwd=tmp)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(120):
                try:
                    if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
                page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                page.goto(url + "/")
                page.get_by_test_id("auth-toggle").click()
                page.get_by_test_id("auth-email").fill("viewer@example.com")
                page.get_by_test_id("auth-password").fill("correct horse battery")
                page.get_by_test_id("auth-submit").click()
                page.get_by_test_id("profile-name").fill("Robin")
                page.get_by_test_id("profile-create").click()
                page.get_by_test_id("row").first.wait_for(state="visible")
                page.wait_for_timeout(500)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
