"""The API on a real PostgreSQL: migrations, full-text + trigram search, idempotent events, erasure.

Each run owns a throw-away schema in the ``test`` database, dropped afterwards.
Skips with a message when PostgreSQL is not running (fails under MARQUEE_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from catalog_api.app import create_app, export_events_now
from catalog_api.options import ApiOptions
from core.lake import Lake
from core.settings import Settings

from .support import make_profile, signup_and_login, watch

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_client(settings: Settings, lake: Lake, postgres_url: str) -> Iterator[TestClient]:
    schema = f"marquee_api_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        # The extension lives in public so dropping the test schema leaves it for other runs.
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public"))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        changed = settings.model_copy(update={"database_url": postgres_url, "serving_url": "http://127.0.0.1:9"})
        with TestClient(create_app(changed, ApiOptions(row_size=6), db_schema=schema)) as client:
            yield client
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _search(client: TestClient, headers: dict[str, str], profile: str, q: str) -> list[str]:
    response = client.get("/v1/search", params={"q": q, "profile_id": profile}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["backend"] == "postgres"
    return [i["title_id"] for i in response.json()["items"]]


def test_postgres_end_to_end(pg_client: TestClient) -> None:
    client = pg_client
    state = client.app.state.marquee  # type: ignore[attr-defined]
    assert state.engine.dialect.name == "postgresql"
    with state.engine.connect() as connection:
        indexes = set(connection.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'titles'")).scalars())
    assert {"ix_titles_fts", "ix_titles_trgm"} <= indexes
    headers = signup_and_login(client, "pg@example.com", country="US")
    adult = make_profile(client, headers, "Adult")["profile_id"]
    kid = make_profile(client, headers, "Kid", is_kids=True)["profile_id"]
    assert _search(client, headers, adult, "galaxy quest")[0] == "m_galaxy"
    assert _search(client, headers, adult, "gala")[0] == "m_galaxy"  # prefix
    assert _search(client, headers, adult, "galaxi quest")[0] == "m_galaxy"  # typo, via trigram similarity
    assert _search(client, headers, adult, "bigelow") == ["m_crime"]
    assert "m_crime" not in _search(client, headers, kid, "dark crime")
    assert "m_cooking" not in _search(client, headers, adult, "cooking")
    first = watch(client, headers, adult, "m_space", 0.5, event_id="pg-1")
    retry = watch(client, headers, adult, "m_space", 0.5, event_id="pg-1")
    assert (first.status_code, retry.status_code) == (201, 200)
    assert export_events_now(state) == 1
    page = client.get(f"/v1/profiles/{kid}/home", headers=headers).json()
    assert page["source"] == "fallback"
    assert client.delete("/v1/account", headers=headers).status_code == 204
    with state.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM watch_events")).scalar_one() == 0
        assert connection.execute(text("SELECT count(*) FROM profiles")).scalar_one() == 0
