"""Initial schema: accounts, profiles, catalog, watch events, export state, revoked tokens.

On PostgreSQL it also enables ``pg_trgm`` and adds the full-text (GIN over
``to_tsvector``) and trigram indexes that the PostgreSQL search backend uses.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from catalog_api.db.extensions import extension_schema, quote_ident

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("plan", sa.String(16), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_accounts_email", "accounts", ["email"], unique=True)
    op.create_table(
        "profiles",
        sa.Column("profile_id", sa.String(64), primary_key=True),
        sa.Column(
            "account_id",
            sa.String(64),
            sa.ForeignKey("accounts.account_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("maturity_level", sa.SmallInteger(), nullable=False),
        sa.Column("is_kids", sa.Boolean(), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_profiles_account_id", "profiles", ["account_id"])
    op.create_table(
        "titles",
        sa.Column("title_id", sa.String(128), primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("synopsis", sa.Text(), nullable=False),
        sa.Column("genres", sa.JSON(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("maturity_rating", sa.String(16), nullable=False),
        sa.Column("maturity_level", sa.SmallInteger(), nullable=False),
        sa.Column("release_year", sa.Integer(), nullable=True),
        sa.Column("date_added", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.Column("cast", sa.JSON(), nullable=False),
        sa.Column("director", sa.JSON(), nullable=False),
        sa.Column("countries", sa.JSON(), nullable=False),
        sa.Column("video_qualities", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
    )
    op.create_table(
        "episodes",
        sa.Column("episode_id", sa.String(128), primary_key=True),
        sa.Column("series_id", sa.String(128), nullable=False),
        sa.Column("season_number", sa.SmallInteger(), nullable=False),
        sa.Column("episode_number", sa.SmallInteger(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
    )
    op.create_index("ix_episodes_series_id", "episodes", ["series_id"])
    op.create_table(
        "watch_events",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(128), nullable=False, unique=True),
        sa.Column(
            "profile_id",
            sa.String(64),
            sa.ForeignKey("profiles.profile_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("title_id", sa.String(128), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position_s", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(32), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
    )
    op.create_index("ix_watch_events_profile_id", "watch_events", ["profile_id"])
    op.create_table(
        "export_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("high_water", _SEQ, nullable=False),
    )
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_revoked_tokens_account_id", "revoked_tokens", ["account_id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Managed databases install extensions in a schema of their own, often not on the search path:
        # create pg_trgm only where it is missing, and name its operator class with its schema.
        schema = extension_schema(bind, "pg_trgm")
        if schema is None:
            op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            schema = extension_schema(bind, "pg_trgm") or "public"
        op.execute("CREATE INDEX ix_titles_fts ON titles USING gin (to_tsvector('simple', search_text))")
        op.execute(f"CREATE INDEX ix_titles_trgm ON titles USING gin (lower(title) {quote_ident(schema)}.gin_trgm_ops)")


def downgrade() -> None:
    for table in ("revoked_tokens", "export_state", "watch_events", "episodes", "titles", "profiles", "accounts"):
        op.drop_table(table)
