"""The outbox's messages and the default sender's usage join the runtime database; claims
get an index on their age (to find stale pending claims).

The outbox used to keep its own ``outbox.sqlite3``: one database and one migration chain make
its per-tenant cap exact across the nodes that share PostgreSQL.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_idempotency_records_created_at", "idempotency_records", ["created_at"])
    op.create_table(
        "outbox_messages",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_outbox_messages_tenant", "outbox_messages", ["tenant"])
    op.create_table(
        "default_sender_usage",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("used", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("default_sender_usage")
    op.drop_index("ix_outbox_messages_tenant", "outbox_messages")
    op.drop_table("outbox_messages")
    op.drop_index("ix_idempotency_records_created_at", "idempotency_records")
