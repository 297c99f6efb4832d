"""Fixtures of the security tests: an app on a test workspace, reachable as a given client address."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog_api.app import create_app
from catalog_api.options import ApiOptions
from core.lake import Lake
from core.settings import Settings
from tests.api.support import fill_lake, free_port

#: The address a test client connects from unless told otherwise (a reverse proxy in some tests).
PEER = "127.0.0.1"
#: Clients opened by ``client_for``; the ``make_app`` fixture closes them (lifespans end).
_OPEN: list[TestClient] = []


@pytest.fixture
def lake(settings: Settings) -> Lake:
    """The workspace lake with the test catalog."""
    return fill_lake(settings)


@pytest.fixture
def make_app(settings: Settings, lake: Lake) -> Iterator[Callable[..., Any]]:
    """Build started apps; ``client(app, peer)`` gives a TestClient connecting from ``peer``."""
    apps: list[Any] = []

    def make(options: ApiOptions | None = None, **settings_changes: Any) -> Any:
        changed = settings.model_copy(update={"serving_url": f"http://127.0.0.1:{free_port()}", **settings_changes})
        app = create_app(changed, options or ApiOptions(row_size=6))
        apps.append(app)
        return app

    yield make
    while _OPEN:
        _OPEN.pop().__exit__(None, None, None)


def client_for(app: Any, peer: str = PEER) -> TestClient:
    """A TestClient of ``app`` whose requests come from ``peer``."""
    client = TestClient(app, client=(peer, 50_000))
    client.__enter__()
    _OPEN.append(client)
    return client


@pytest.fixture
def api(make_app: Callable[..., Any]) -> TestClient:
    """A started app with default options, from 127.0.0.1."""
    return client_for(make_app())
