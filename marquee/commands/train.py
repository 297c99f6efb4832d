"""`marquee train` commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `train` command(s) to the root CLI (filled in by its issue)."""
    del app
