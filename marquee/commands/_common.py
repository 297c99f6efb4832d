"""Helpers shared by the CLI command modules."""

from __future__ import annotations

from core.settings import Settings


def load_settings() -> Settings:
    """Build settings from the environment and make sure the workspace exists."""
    settings = Settings()
    settings.workspace.ensure()
    return settings
