"""An API test client on SQLite (the default) or on a throw-away PostgreSQL schema.

Boundary and security tests run on both databases: PostgreSQL refuses values
(NUL in text, integers beyond 2^31, years outside its range) that SQLite
stores, so a check that holds on one may not hold on the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from catalog_api.app import create_app
from catalog_api.options import ApiOptions
from core.settings import Settings

from .support import free_port

BACKENDS = ("sqlite", "postgres")


@contextmanager
def pg_schema(postgres_url: str, prefix: str = "marquee_sec") -> Iterator[str]:
    """A fresh schema in the shared ``test`` database, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public"))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def backend_client(
    backend: str, settings: Settings, postgres_url: str | None, options: ApiOptions | None = None, **changes: Any
) -> Iterator[TestClient]:
    """A started app (lifespan entered) on ``backend``; the model server is down."""
    options = options or ApiOptions(row_size=6, breaker_cooldown_s=0.5)
    changes = {"serving_url": f"http://127.0.0.1:{free_port()}", **changes}
    if backend == "sqlite":
        with TestClient(create_app(settings.model_copy(update=changes), options)) as client:
            yield client
        return
    assert postgres_url is not None
    with pg_schema(postgres_url) as schema:
        changed = settings.model_copy(update={"database_url": postgres_url, **changes})
        with TestClient(create_app(changed, options, db_schema=schema)) as client:
            yield client
