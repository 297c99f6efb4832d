"""Migrations on managed PostgreSQL: ``pg_trgm`` installed in a schema of its own (issue 16, finding 8).

Managed services install extensions in a dedicated schema (``extensions``) that
is not on the application's search path. The shared ``test`` database already
has ``pg_trgm`` (in ``public``), and an extension lives once per database, so
this test makes a throw-away database of its own, installs ``pg_trgm`` into a
separate schema there, and runs the API (migrations, trigram index, typo
search) with a search path that does not name that schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from catalog_api.app import create_app
from catalog_api.options import ApiOptions
from core.lake import Lake
from core.settings import Settings

from .support import make_profile, signup_and_login

pytestmark = pytest.mark.integration


@pytest.fixture
def managed_database(postgres_url: str) -> Iterator[str]:
    name = f"marquee_sec_ext_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        setup = create_engine(url, isolation_level="AUTOCOMMIT")
        with setup.connect() as connection:
            connection.execute(text("CREATE SCHEMA extensions"))
            connection.execute(text("CREATE EXTENSION pg_trgm WITH SCHEMA extensions"))
            connection.execute(text("CREATE SCHEMA app"))
        setup.dispose()
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": name}
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def test_trigram_index_and_search_with_pg_trgm_in_another_schema(
    settings: Settings, lake: Lake, managed_database: str
) -> None:
    changed = settings.model_copy(update={"database_url": managed_database, "serving_url": "http://127.0.0.1:9"})
    # db_schema "app": the search path is "app, public"; pg_trgm is in "extensions", on neither.
    with TestClient(create_app(changed, ApiOptions(row_size=6), db_schema="app")) as client:
        state = client.app.state.marquee  # type: ignore[attr-defined]
        with state.engine.connect() as connection:
            index = connection.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_titles_trgm'")
            ).scalar_one()
        assert "gin_trgm_ops" in index  # built (the opclass is named with its schema in the migration)
        headers = signup_and_login(client, "managed@example.com")
        profile = make_profile(client, headers, "P")["profile_id"]
        response = client.get("/v1/search", params={"q": "galaxi quest", "profile_id": profile}, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["items"][0]["title_id"] == "m_galaxy"  # typo found through word_similarity
