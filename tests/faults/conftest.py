"""Fixtures of the fault suite: a workspace with the test catalog for API processes."""

from __future__ import annotations

import pytest

from core.settings import Settings
from tests.api.support import fill_lake


@pytest.fixture
def workspace_env(settings: Settings) -> dict[str, str]:
    """Environment of an API process on the test workspace (its lake holds the test catalog)."""
    fill_lake(settings)
    return {"MARQUEE_HOME": str(settings.home), "MARQUEE_SERVING_URL": "http://127.0.0.1:9"}
