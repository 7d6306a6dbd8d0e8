"""The stored log and log streams: ``log_events`` (every event of the JSON Lines log, numbered
by ``seq`` in the order it was stored), ``log_ingest`` (how far each node's log file was read
into it) and ``log_streams`` (Auth0's log streams, each with its cursor over ``seq``).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: the rowid alias


def upgrade() -> None:
    op.create_table(
        "log_events",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("log_id", sa.String(64), nullable=False, unique=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("user_name", sa.String(255), nullable=True),
        sa.Column("client_id", sa.String(255), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("event", sa.Text, nullable=False),
    )
    op.create_index("ix_log_events_tenant_seq", "log_events", ["tenant", "seq"])
    op.create_index("ix_log_events_tenant_type_seq", "log_events", ["tenant", "type", "seq"])
    op.create_index("ix_log_events_tenant_date", "log_events", ["tenant", "date"])
    op.create_index("ix_log_events_tenant_user_id", "log_events", ["tenant", "user_id"])
    op.create_index("ix_log_events_date", "log_events", ["date"])
    op.create_table(
        "log_ingest",
        sa.Column("source", sa.String(512), primary_key=True),
        sa.Column("file_id", sa.String(64), nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "log_streams",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sink", sa.Text, nullable=False),
        sa.Column("authorization_sealed", sa.Text, nullable=True),
        sa.Column("secret_sealed", sa.Text, nullable=False),
        sa.Column("filters", sa.Text, nullable=False),
        sa.Column("cursor", sa.BigInteger, nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("delivered", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("log_streams")
    op.drop_table("log_ingest")
    for name in (
        "ix_log_events_date",
        "ix_log_events_tenant_user_id",
        "ix_log_events_tenant_date",
        "ix_log_events_tenant_type_seq",
        "ix_log_events_tenant_seq",
    ):
        op.drop_index(name, "log_events")
    op.drop_table("log_events")
