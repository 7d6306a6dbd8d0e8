"""Signals: carriers' delivery receipts (one row per delivery, provider and final status, so a
receipt sent twice is logged once) and usage triggers (a tenant's threshold of messages per
hour, day or month, the counts per period, and the one firing per trigger and period).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "delivery_receipts",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("delivery_id", sa.String(64), primary_key=True),
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=True),
        sa.Column("carrier_status", sa.String(32), nullable=False),
        sa.Column("error_code", sa.String(32), nullable=True),
        sa.Column("received_at", _WHEN, nullable=False),
    )
    op.create_table(
        "usage_triggers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("threshold", sa.Integer, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
    )
    op.create_index("ix_usage_triggers_tenant", "usage_triggers", ["tenant"])
    op.create_table(
        "usage_counts",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("period", sa.String(8), primary_key=True),
        sa.Column("period_start", _WHEN, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "usage_trigger_fires",
        sa.Column("trigger_id", sa.String(32), primary_key=True),
        sa.Column("period_start", _WHEN, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("fired_at", _WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("usage_trigger_fires")
    op.drop_table("usage_counts")
    op.drop_index("ix_usage_triggers_tenant", table_name="usage_triggers")
    op.drop_table("usage_triggers")
    op.drop_table("delivery_receipts")
