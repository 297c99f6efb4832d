"""The small web page a person uses to look at Marquee: static HTML, JS and CSS.

The page is a plain client of the public ``/v1`` routes (no build step, no
framework), so serving it is only a matter of handing out files: ``/`` returns
``index.html`` and ``/static/...`` the assets. ``mount_web`` adds both to an
app; it registers a route and a mount with their own prefixes, so it can be
called before or after the API routers without shadowing them.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX_HTML = STATIC_DIR / "index.html"


def mount_web(app: FastAPI) -> None:
    """Serve the page at ``/`` and its assets under ``/static``."""

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        # no-cache: the page is tiny, and a stale copy after an upgrade would call old routes.
        return FileResponse(INDEX_HTML, media_type="text/html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="web-static")
