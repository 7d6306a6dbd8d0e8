"""Migrations: a database made before there were migrations is adopted, not broken."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, create_engine, inspect

from runtime.store import IdempotencyStore, create_engine_for, migrate
from runtime.store.upgrade import current_revision, head_revision
from tests.store.conftest import sqlite_url


def _old_schema() -> MetaData:
    """What runtime.store made with ``metadata.create_all`` before migrations."""
    old = MetaData()
    Table(
        "idempotency_records",
        old,
        Column("tenant", String(64), primary_key=True),
        Column("key", String(255), primary_key=True),
        Column("fingerprint", String(64), nullable=False),
        Column("report", Text, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("completed_at", DateTime(timezone=True), nullable=True),
    )
    return old


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        (tmp_path / "data").mkdir()
        return sqlite_url(tmp_path)
    return str(request.getfixturevalue("fresh_postgres_url"))


def test_a_create_all_database_is_stamped_and_upgraded_with_its_records(empty_url: str) -> None:
    url = empty_url
    old = create_engine(url)
    schema = _old_schema()
    schema.create_all(old)
    with old.begin() as conn:
        conn.execute(
            schema.tables["idempotency_records"].insert(),
            {
                "tenant": "acme",
                "key": "before-migrations",
                "fingerprint": "digest",
                "report": '{"status": "delivered"}',
                "created_at": datetime.now(UTC),
            },
        )
    old.dispose()

    engine = create_engine_for(url)
    migrate(engine)
    migrate(engine)  # and again: already at head, nothing to do

    assert current_revision(engine) == head_revision()
    assert {"outbox_messages", "default_sender_usage"} <= set(inspect(engine).get_table_names())
    record = IdempotencyStore(engine).get("acme", "before-migrations")
    assert record is not None
    assert record.report == '{"status": "delivered"}'
    assert record.created_at is not None
    engine.dispose()


def test_the_head_schema_matches_the_tables_the_code_uses(tmp_path: Path) -> None:
    """No drift between runtime.store.schema and the migrations (Alembic's own comparison)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from runtime.store.schema import metadata

    engine = create_engine_for(sqlite_url(tmp_path))
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    engine.dispose()
