"""Fixtures of the catalog API tests (helpers live in ``support``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog_api.app import create_app
from catalog_api.options import ApiOptions
from core.lake import Lake
from core.settings import Settings

from .support import ModelServerDouble, ThreadedServer, fill_lake, free_port, model_server_app


@pytest.fixture
def lake(settings: Settings) -> Lake:
    """The workspace lake with the test catalog."""
    return fill_lake(settings)


@pytest.fixture
def dead_model_url() -> str:
    """An address where no model server listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def make_client(settings: Settings, lake: Lake, dead_model_url: str) -> Iterator[Callable[..., TestClient]]:
    """Build TestClients of fresh apps on the test workspace (model server down unless told)."""
    clients: list[TestClient] = []

    def make(serving_url: str | None = None, options: ApiOptions | None = None, **settings_changes: Any) -> TestClient:
        changed = settings.model_copy(update={"serving_url": serving_url or dead_model_url, **settings_changes})
        # A generous model budget: the double answers in milliseconds, but a loaded CI machine can stall it;
        # tests of the budget itself pass their own options.
        defaults = ApiOptions(breaker_cooldown_s=0.5, row_size=6, model_budget_s=1.0)
        client = TestClient(create_app(changed, options or defaults))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """A client of an app whose model server is down."""
    return make_client()


@pytest.fixture
def model_double(lake: Lake) -> Iterator[tuple[ModelServerDouble, str]]:
    """A running model-server double and its URL."""
    double = ModelServerDouble(lake)
    with ThreadedServer(model_server_app(double)) as server:
        yield double, server.url
