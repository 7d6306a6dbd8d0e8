"""Each tenant's phone abuse protection (rate limits, country rules, refused number types) as
set through ``/api/v2/attack-protection/phone-limits``: one JSON row per tenant, validated by
``runtime.policy.PhoneLimits``. A tenant without a row has the defaults.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "phone_limits",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("settings", sa.Text, nullable=False),  # JSON: the fields the tenant set
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("phone_limits")
