"""Engine, sessions and schema migration of the API database.

Built by ``create_app(settings)`` (never at import) so that tests can run many
apps side by side, each on its own SQLite file or PostgreSQL schema.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from catalog_api.db.extensions import include_extension_schemas

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


#: KiB of SQLite page cache per connection (``PRAGMA cache_size``).
SQLITE_CACHE_KIB = 1024


def make_engine(url: str, *, schema: str | None = None) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    Args:
        url: SQLAlchemy URL (``sqlite:///...`` or ``postgresql+psycopg://...``).
        schema: PostgreSQL only: put this schema first on the search path, so a
            test run can own a throw-away schema in a shared database.
    """
    # A request may wait on the model server while holding no connection, but bursts still need
    # more than SQLAlchemy's default 5 + 10 connections; SQLite connections are cheap.
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 20, "max_overflow": 40, "pool_timeout": 10}
    if url.startswith("sqlite"):
        # A SQLite connection is a file handle: nothing can drop it, so no ping before every checkout.
        kwargs["pool_pre_ping"] = False
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    elif schema:
        kwargs["connect_args"] = {"options": f"-csearch_path={schema},public"}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "postgresql":
        include_extension_schemas(engine)  # pg_trgm in a schema of its own (managed PostgreSQL)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # 1 MiB of page cache per pooled connection (SQLite's default is 2 MiB): up to 20 stay open, each
            # cache filling as the database grows, which a long soak measured as growth; the OS caches the file.
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cursor.close()

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (responses are built after it)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs the packaged migrations on ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "heads") -> None:
    """Bring the database schema up to ``revision`` (idempotent).

    ``heads``: every branch of the migration history, so migrations added side by side
    (each revising the same parent) all apply without a merge revision.
    """
    command.upgrade(alembic_config(engine), revision)
    logger.info("database migrated to %s on %s", revision, engine.url.render_as_string(hide_password=True))
