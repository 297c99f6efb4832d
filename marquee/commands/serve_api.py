"""`marquee serve api`."""

from __future__ import annotations

import typer


def register(group: typer.Typer) -> None:
    """Add `api` to the `serve` group (filled in by its issue)."""
    del group
