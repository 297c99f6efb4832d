"""Alembic environment: runs on the engine handed over by ``catalog_api.db.engine.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from catalog_api.db.tables import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run migrations on the caller's engine (no URL in an ini file)."""
    engine: Engine | None = config.attributes.get("engine")
    if engine is None:
        raise RuntimeError("run migrations through catalog_api.db.engine.migrate(engine)")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
