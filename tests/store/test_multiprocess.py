"""Many processes at once: migrating an empty data folder, and caps that hold exactly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import inspect

from runtime.store import DefaultSenderUsage, create_engine_for
from runtime.store.upgrade import current_revision, head_revision
from tests.store.conftest import run_together, sqlite_url

PROCESSES = 10
CAP = 100
TRIES = 15  # each: 150 attempts against a cap of 100


def test_twenty_processes_migrate_an_empty_data_folder_at_once(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    assert not (tmp_path / "data").exists()
    results = run_together("migrate", [[url]] * 20)

    assert results == [{"ok": True}] * 20
    engine = create_engine_for(url)
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"idempotency_records", "outbox_messages", "default_sender_usage"} <= tables
    engine.dispose()


def test_twenty_processes_migrate_an_empty_postgresql_database_at_once(
    fresh_postgres_url: str,
) -> None:
    results = run_together("migrate", [[fresh_postgres_url]] * 20)

    assert results == [{"ok": True}] * 20
    engine = create_engine_for(fresh_postgres_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_outbox_cap_is_exact_across_processes(database_url: str, tenant: str) -> None:
    results = run_together("outbox", [[database_url, tenant, str(CAP), str(TRIES)]] * PROCESSES)

    assert sum(r["stored"] for r in results) == CAP
    refused = [code for r in results for code in r["refused"]]
    assert refused == ["outbox_cap_reached"] * (PROCESSES * TRIES - CAP)
    if database_url.startswith("sqlite"):  # and the table agrees, read by another driver
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            (count,) = db.execute(
                "SELECT count(*) FROM outbox_messages WHERE tenant = ?", (tenant,)
            ).fetchone()
        assert count == CAP


def test_default_sender_usage_cap_is_exact_across_processes(database_url: str, tenant: str) -> None:
    results = run_together("reserve", [[database_url, tenant, str(CAP), str(TRIES)]] * PROCESSES)

    assert sum(r["won"] for r in results) == CAP
    engine = create_engine_for(database_url)
    assert DefaultSenderUsage(engine).used(tenant) == CAP
    engine.dispose()
