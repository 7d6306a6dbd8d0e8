"""The Verify API's state: phone enrollments and the challenges sent to enrolled phones.

A code is stored only as an HMAC (``code_hash``, keyed by the master key, with the row's id):
never in clear. ``idempotency_key`` is unique per tenant, so the same request retried on any
node finds the row the first one made and sends no second code.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def _code_columns() -> list[sa.Column[object]]:
    """What both tables keep about their one code and the request that sent it."""
    return [
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("locale", sa.String(35), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("code_hash", sa.String(96), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("delivery", sa.Text, nullable=True),  # JSON: the delivery report's summary
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "phone_enrollments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("phone_number", sa.String(20), nullable=False),
        *_code_columns(),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("tenant", "idempotency_key", name="uq_phone_enrollments_key"),
    )
    op.create_index("ix_phone_enrollments_user", "phone_enrollments", ["tenant", "user_id"])
    op.create_table(
        "phone_challenges",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("enrollment_id", sa.String(32), nullable=False),
        *_code_columns(),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("tenant", "idempotency_key", name="uq_phone_challenges_key"),
    )
    op.create_index("ix_phone_challenges_user", "phone_challenges", ["tenant", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_phone_challenges_user", "phone_challenges")
    op.drop_table("phone_challenges")
    op.drop_index("ix_phone_enrollments_user", "phone_enrollments")
    op.drop_table("phone_enrollments")
