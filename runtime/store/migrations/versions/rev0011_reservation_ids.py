"""The default sender's usage row keeps the id of the last reservation that counted: a
reservation whose upsert committed but whose answer was lost (a connection reset after the
server ran it) is recognised as counted, and its message sent, rather than left counted
against the cap with nothing sent. Rows counted before this revision have none.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("default_sender_usage") as batch:
        batch.add_column(sa.Column("last_reservation", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("default_sender_usage") as batch:
        batch.drop_column("last_reservation")
