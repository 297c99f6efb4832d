"""Players' quality-of-experience reports (``playback_reports``).

Revision ID: 0003_playback_reports
Revises: 0002_quarantined_events
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_playback_reports"
down_revision = "0002_quarantined_events"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "playback_reports",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("report_seq", sa.Integer(), nullable=False),
        sa.Column(
            "profile_id",
            sa.String(64),
            sa.ForeignKey("profiles.profile_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("title_id", sa.String(128), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("device", sa.String(32), nullable=False),
        sa.Column("edge", sa.String(64), nullable=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("startup_ms", sa.Integer(), nullable=True),
        sa.Column("played_s", sa.Float(), nullable=False),
        sa.Column("rebuffer_count", sa.Integer(), nullable=False),
        sa.Column("rebuffer_s", sa.Float(), nullable=False),
        sa.Column("bitrate_switches", sa.Integer(), nullable=False),
        sa.Column("avg_bitrate_kbps", sa.Integer(), nullable=False),
        sa.Column("fatal_error", sa.String(64), nullable=True),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("session_id", "report_seq", name="uq_playback_reports_session_report"),
    )
    op.create_index("ix_playback_reports_session_id", "playback_reports", ["session_id"])
    op.create_index("ix_playback_reports_profile_id", "playback_reports", ["profile_id"])


def downgrade() -> None:
    op.drop_table("playback_reports")
