"""PostgreSQL extensions wherever they are installed (managed databases put them in their own schema).

``pg_trgm`` may live in ``public``, in an ``extensions`` schema, or anywhere
else; its operator classes and functions (``gin_trgm_ops``,
``word_similarity``) are found by the search path. Each new connection of the
API therefore appends the extension's schema to its search path when it is not
there already, and the migration names the operator class with its schema.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, event, text

_SCHEMA_OF = """
SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = %s
"""


def extension_schema(connection: Connection, name: str) -> str | None:
    """The schema ``name`` is installed in, or None when it is not installed."""
    found = connection.execute(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = :name"
        ),
        {"name": name},
    ).scalar()
    return str(found) if found is not None else None


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def include_extension_schemas(engine: Engine, names: tuple[str, ...] = ("pg_trgm",)) -> None:
    """Append the schemas of the ``names`` extensions to each new connection's search path."""

    @event.listens_for(engine, "connect")
    def _extend_search_path(dbapi_connection: Any, _record: Any) -> None:
        autocommit = getattr(dbapi_connection, "autocommit", None)
        cursor = dbapi_connection.cursor()
        try:
            for name in names:
                cursor.execute(_SCHEMA_OF, (name,))
                row = cursor.fetchone()
                if row is None:
                    continue
                cursor.execute("SELECT current_schemas(false)")
                current = cursor.fetchone()[0]
                if row[0] not in current:
                    cursor.execute(
                        "SELECT set_config('search_path', current_setting('search_path') || ', ' || %s, false)",
                        (quote_ident(row[0]),),
                    )
        finally:
            cursor.close()
        if autocommit is False:
            dbapi_connection.commit()  # the SET must not be rolled back with the pool's first reset
