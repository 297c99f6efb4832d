"""`marquee serve models`."""

from __future__ import annotations

import typer


def register(group: typer.Typer) -> None:
    """Add `models` to the `serve` group (filled in by its issue)."""
    del group
