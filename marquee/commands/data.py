"""`marquee data` commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `data` command(s) to the root CLI (filled in by its issue)."""
    del app
