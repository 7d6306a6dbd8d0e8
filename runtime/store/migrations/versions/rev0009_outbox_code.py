"""The outbox keeps each message's code beside its text, so ``GET /api/v2/phone/outbox`` can
mask exactly that code however the template wrote it (codes may hold letters; a pattern cannot
tell ``abcd`` from a word). The text already holds the code in clear: nothing new is exposed.
Rows stored before this revision have none and are masked by pattern only.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.add_column(sa.Column("code", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_column("code")
