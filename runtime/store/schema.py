"""The runtime database's tables as they stand at the head of the migration chain.

Alembic migrations (``runtime/store/migrations/versions``) create and change these tables; this
module only describes the result, for building statements. A change here needs a migration.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

__all__ = [
    "action_secrets",
    "action_versions",
    "actions",
    "default_sender_usage",
    "delivery_receipts",
    "guardian_phone",
    "idempotency_records",
    "jobs",
    "log_events",
    "log_ingest",
    "log_streams",
    "metadata",
    "outbox_messages",
    "phone_challenges",
    "phone_enrollments",
    "phone_limits",
    "phone_providers",
    "phone_templates",
    "tenants",
    "trigger_bindings",
    "usage_counts",
    "usage_trigger_fires",
    "usage_triggers",
]

metadata = MetaData()

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("report", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    # Who claimed it: a claim whose answer was lost (a reset connection) is recognised as
    # one's own when the statement is tried again, not taken for another request's.
    Column("claim_id", String(32), nullable=True),
    # Where the claimed delivery goes: a claim a crash left pending is accounted for with its
    # own log event (runtime.delivery.stale_claims), to the phone it was for.
    Column("recipient", String(32), nullable=True),
    Column("channel", String(8), nullable=True),
    Column("purpose", String(16), nullable=True),
    # Old records are found by age (the retention) ...
    Index("ix_idempotency_records_created_at", "created_at"),
    # ... and pending claims among them by a small index of their own: only claims in flight
    # (or left by a crash) are in it, so the sweep never reads the completed records.
    Index(
        "ix_idempotency_records_pending",
        "created_at",
        sqlite_where=text("report IS NULL AND recipient IS NOT NULL"),
        postgresql_where=text("report IS NULL AND recipient IS NOT NULL"),
    ),
)

outbox_messages = Table(
    "outbox_messages",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("recipient", String(20), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The code the text carries, so the API can mask it exactly (migration 0009); NULL before.
    Column("code", String(64), nullable=True),
)

default_sender_usage = Table(
    "default_sender_usage",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("used", Integer, nullable=False),
    # the last reservation that counted: one whose answer was lost is recognised as counted
    Column("last_reservation", String(32), nullable=True),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("payload", Text, nullable=True),  # sealed (runtime.store.crypto); NULL once finished
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),  # runs started (claims)
    Column("state", String(16), nullable=False),  # queued, running, done, failed
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Claims look for due work by state and time; caps count a tenant's unfinished jobs.
    Index("ix_jobs_state_due_at", "state", "due_at"),
    Index("ix_jobs_tenant_kind_state", "tenant", "kind", "state"),
)


# -- the service's configuration (migration 0004) ------------------------------------------


def _times() -> tuple[Column[object], Column[object]]:
    return (
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )


tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("friendly_name", String(255), nullable=True),
    Column("settings", Text, nullable=False),  # JSON: the delivery policy (TenantConfig fields)
    Column("version", Integer, nullable=False),  # bumped on every change: nodes poll it
    *_times(),
)

actions = Table(
    "actions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("supported_triggers", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("runtime", String(32), nullable=False),
    Column("dependencies", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("deployed_version_id", String(36), nullable=True),
    *_times(),
    UniqueConstraint("tenant", "name", name="uq_actions_tenant_name"),
)

action_versions = Table(
    "action_versions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("action_id", String(36), nullable=False),
    Column("tenant", String(64), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("code", Text, nullable=False),
    Column("runtime", String(32), nullable=False),
    Column("supported_triggers", Text, nullable=False),
    Column("dependencies", Text, nullable=False),
    Column("secrets", Text, nullable=False),  # names and updated_at only
    Column("deployed", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("built_at", DateTime(timezone=True), nullable=True),
    *_times(),
    UniqueConstraint("action_id", "number", name="uq_action_versions_number"),
)

action_secrets = Table(
    "action_secrets",
    metadata,
    Column("action_id", String(36), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("value_sealed", Text, nullable=False),  # runtime.store.crypto, never plain
    *_times(),
)

trigger_bindings = Table(
    "trigger_bindings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("trigger_id", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("action_id", String(36), nullable=False),
    Column("display_name", String(255), nullable=False),
    *_times(),
    UniqueConstraint("tenant", "trigger_id", "position", name="uq_bindings_position"),
)

phone_providers = Table(
    "phone_providers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(64), nullable=False, unique=True),  # one per tenant, as Auth0
    Column("name", String(100), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("configuration", Text, nullable=False),
    Column("credentials_sealed", Text, nullable=True),
    *_times(),
)

phone_templates = Table(
    "phone_templates",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("type", String(32), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("content", Text, nullable=False),
    *_times(),
    UniqueConstraint("tenant", "type", name="uq_phone_templates_type"),
)

guardian_phone = Table(
    "guardian_phone",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("message_types", Text, nullable=False),
    Column("selected_provider", String(32), nullable=False),
    Column("twilio", Text, nullable=True),  # {sid, from, messaging_service_sid}
    Column("twilio_token_sealed", Text, nullable=True),
    Column("templates", Text, nullable=True),  # {enrollment_message, verification_message}
    *_times(),
)


def _code_columns() -> list[Column[object]]:
    """What both Verify API tables keep about their one code (migration 0005)."""
    return [
        Column("channel", String(8), nullable=False),
        Column("locale", String(35), nullable=False),
        Column("status", String(16), nullable=False),
        Column("idempotency_key", String(255), nullable=True),
        Column("request_digest", String(64), nullable=False),
        Column("code_hash", String(96), nullable=False),  # HMAC, never the code
        Column("expires_at", DateTime(timezone=True), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("delivery", Text, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    ]


phone_enrollments = Table(
    "phone_enrollments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("phone_number", String(20), nullable=False),
    *_code_columns(),
    Column("confirmed_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("tenant", "idempotency_key", name="uq_phone_enrollments_key"),
    Index("ix_phone_enrollments_user", "tenant", "user_id"),
)

phone_challenges = Table(
    "phone_challenges",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("enrollment_id", String(32), nullable=False),
    *_code_columns(),
    Column("verified_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("tenant", "idempotency_key", name="uq_phone_challenges_key"),
    Index("ix_phone_challenges_user", "tenant", "user_id"),
)

# -- phone abuse protection (migration 0006) -----------------------------------------------

phone_limits = Table(
    "phone_limits",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("settings", Text, nullable=False),  # JSON: the PhoneLimits fields the tenant set
    *_times(),
)

# -- the stored log and log streams (migration 0007) ----------------------------------------

log_events = Table(
    "log_events",
    metadata,
    # the order events were stored in: log streams keep a cursor over it
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("log_id", String(64), nullable=False, unique=True),  # a re-read line is a no-op
    Column("tenant", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("date", DateTime(timezone=True), nullable=False),
    Column("user_id", String(255), nullable=True),
    Column("user_name", String(255), nullable=True),
    Column("client_id", String(255), nullable=True),
    Column("ip", String(64), nullable=True),
    Column("event", Text, nullable=False),  # the JSON line as the file has it
    Index("ix_log_events_tenant_seq", "tenant", "seq"),
    Index("ix_log_events_tenant_type_seq", "tenant", "type", "seq"),
    Index("ix_log_events_tenant_date", "tenant", "date"),
    Index("ix_log_events_tenant_user_id", "tenant", "user_id"),
    Index("ix_log_events_date", "date"),
)

log_ingest = Table(
    "log_ingest",
    metadata,
    Column("source", String(512), primary_key=True),  # host and path of one node's log file
    Column("file_id", String(64), nullable=False),  # device:inode: a rotated file starts at 0
    Column("offset", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

log_streams = Table(
    "log_streams",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("type", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # active, paused, suspended
    Column("sink", Text, nullable=False),  # JSON, without httpAuthorization
    Column("authorization_sealed", Text, nullable=True),
    Column("secret_sealed", Text, nullable=False),  # the HMAC key of its signatures
    Column("filters", Text, nullable=False),
    Column("cursor", BigInteger, nullable=False),  # the last log_events.seq delivered
    Column("job_id", String(32), nullable=True),  # the one job delivering it
    Column("failures", Integer, nullable=False),  # failed batches in a row
    Column("failing_since", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered", BigInteger, nullable=False),
    *_times(),
)

# -- signals: delivery receipts and usage triggers (migration 0008) -------------------------

delivery_receipts = Table(
    "delivery_receipts",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("delivery_id", String(64), primary_key=True),
    Column("provider", String(64), primary_key=True),
    Column("status", String(16), primary_key=True),  # delivered | undelivered
    Column("channel", String(8), nullable=False),
    Column("message_id", String(128), nullable=True),
    Column("carrier_status", String(32), nullable=False),
    Column("error_code", String(32), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

usage_triggers = Table(
    "usage_triggers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("period", String(8), nullable=False),  # hour | day | month
    Column("threshold", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),  # sealed with the master key
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_usage_triggers_tenant", "tenant"),
)

usage_counts = Table(
    "usage_counts",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("period", String(8), primary_key=True),
    Column("period_start", DateTime(timezone=True), primary_key=True),
    Column("count", Integer, nullable=False),
)

usage_trigger_fires = Table(
    "usage_trigger_fires",
    metadata,
    Column("trigger_id", String(32), primary_key=True),
    Column("period_start", DateTime(timezone=True), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("fired_at", DateTime(timezone=True), nullable=False),
)
