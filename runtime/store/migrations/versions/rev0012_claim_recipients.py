"""Idempotency records keep where the claimed delivery goes (recipient, channel, purpose),
and pending claims get a small index of their own: a claim a crash left pending is found by a
sweep and accounted for with its own log event, even when no retry ever comes. Rows claimed
before this revision have none of these and are left to the retry that finds them, as before.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None

_PENDING = "report IS NULL AND recipient IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.add_column(sa.Column("recipient", sa.String(32), nullable=True))
        batch.add_column(sa.Column("channel", sa.String(8), nullable=True))
        batch.add_column(sa.Column("purpose", sa.String(16), nullable=True))
    op.create_index(
        "ix_idempotency_records_pending",
        "idempotency_records",
        ["created_at"],
        sqlite_where=sa.text(_PENDING),
        postgresql_where=sa.text(_PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_idempotency_records_pending", table_name="idempotency_records")
    with op.batch_alter_table("idempotency_records") as batch:
        batch.drop_column("purpose")
        batch.drop_column("channel")
        batch.drop_column("recipient")
