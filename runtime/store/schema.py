"""The runtime database's tables as they stand at the head of the migration chain.

Alembic migrations (``runtime/store/migrations/versions``) create and change these tables; this
module only describes the result, for building statements. A change here needs a migration.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text

__all__ = [
    "default_sender_usage",
    "idempotency_records",
    "jobs",
    "metadata",
    "outbox_messages",
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
    # Stale pending claims are found by age (a claim left by a crash stays pending).
    Index("ix_idempotency_records_created_at", "created_at"),
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
)

default_sender_usage = Table(
    "default_sender_usage",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("used", Integer, nullable=False),
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
