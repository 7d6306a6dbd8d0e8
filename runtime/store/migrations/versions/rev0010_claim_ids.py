"""Idempotency records keep who claimed them: a claim's INSERT that committed but whose answer
was lost (a connection reset after the server ran it) is tried again, conflicts with its own
row, and must be recognised as its own rather than as another request's (which blocked the key
forever, with nothing sent). Rows claimed before this revision have none.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.add_column(sa.Column("claim_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.drop_column("claim_id")
