"""The service's configuration: tenants, actions and their immutable versions, action secrets,
trigger bindings, phone providers and templates, and the guardian phone factor's settings.

Secrets and credentials are stored sealed (``runtime.store.crypto``, AES-GCM under the master
key); the ``*_sealed`` columns never hold plain values.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def _times() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("friendly_name", sa.String(255), nullable=True),
        sa.Column("settings", sa.Text, nullable=False),  # JSON: delivery policy (TenantConfig)
        sa.Column("version", sa.Integer, nullable=False),  # bumped on every change of config
        *_times(),
    )
    op.create_table(
        "actions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("supported_triggers", sa.Text, nullable=False),  # JSON [{id, version}]
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("runtime", sa.String(32), nullable=False),
        sa.Column("dependencies", sa.Text, nullable=False),  # JSON
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("deployed_version_id", sa.String(36), nullable=True),
        *_times(),
        sa.UniqueConstraint("tenant", "name", name="uq_actions_tenant_name"),
    )
    op.create_index("ix_actions_tenant", "actions", ["tenant"])
    op.create_table(
        "action_versions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("action_id", sa.String(36), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("runtime", sa.String(32), nullable=False),
        sa.Column("supported_triggers", sa.Text, nullable=False),
        sa.Column("dependencies", sa.Text, nullable=False),
        sa.Column("secrets", sa.Text, nullable=False),  # JSON: names and updated_at, no values
        sa.Column("deployed", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=True),
        *_times(),
        sa.UniqueConstraint("action_id", "number", name="uq_action_versions_number"),
    )
    op.create_index("ix_action_versions_tenant", "action_versions", ["tenant"])
    op.create_table(
        "action_secrets",
        sa.Column("action_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("value_sealed", sa.Text, nullable=False),
        *_times(),
    )
    op.create_table(
        "trigger_bindings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("trigger_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("action_id", sa.String(36), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        *_times(),
        sa.UniqueConstraint("tenant", "trigger_id", "position", name="uq_bindings_position"),
    )
    op.create_table(
        "phone_providers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False, unique=True),  # one per tenant
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("configuration", sa.Text, nullable=False),  # JSON
        sa.Column("credentials_sealed", sa.Text, nullable=True),
        *_times(),
    )
    op.create_table(
        "phone_templates",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("content", sa.Text, nullable=False),  # JSON {syntax, from, body{text, voice}}
        *_times(),
        sa.UniqueConstraint("tenant", "type", name="uq_phone_templates_type"),
    )
    op.create_table(
        "guardian_phone",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("message_types", sa.Text, nullable=False),  # JSON ["sms", "voice"]
        sa.Column("selected_provider", sa.String(32), nullable=False),
        sa.Column("twilio", sa.Text, nullable=True),  # JSON {sid, from, messaging_service_sid}
        sa.Column("twilio_token_sealed", sa.Text, nullable=True),
        sa.Column("templates", sa.Text, nullable=True),  # JSON {enrollment_message, ...}
        *_times(),
    )


def downgrade() -> None:
    for table in (
        "guardian_phone",
        "phone_templates",
        "phone_providers",
        "trigger_bindings",
        "action_secrets",
        "action_versions",
        "actions",
        "tenants",
    ):
        op.drop_table(table)
