"""Idempotency records older than ``idempotency_retention_days`` are deleted in the background;
younger ones, pending or completed, are kept and still honoured."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import update

from runtime.delivery import Pipeline, key_retention
from runtime.settings import Settings
from runtime.store import IdempotencyStore, create_engine_for, migrate
from runtime.store import idempotency as idempotency_module
from runtime.store.schema import idempotency_records
from tests.conftest import PipelineFactory
from tests.fake_providers import ProvidersPlugin, ScriptedProvider
from tests.test_delivery import request, tenant


def _age(engine_store: IdempotencyStore, tenant_id: str, key: str, days: float) -> None:
    """Make ``key``'s record look claimed ``days`` ago."""
    claimed = datetime.now(UTC) - timedelta(days=days)
    with engine_store._engine.begin() as conn:
        conn.execute(
            update(idempotency_records)
            .where(idempotency_records.c.tenant == tenant_id, idempotency_records.c.key == key)
            .values(created_at=claimed)
        )


def _purges_only_old_records(database_url: str) -> None:
    engine = create_engine_for(database_url)
    migrate(engine)
    store = IdempotencyStore(engine)
    prefix = uuid.uuid4().hex
    try:
        keys = {name: f"{prefix}-{name}" for name in ("old-done", "old-pending", "young")}
        for key in keys.values():
            assert store.claim("acme", key, "digest").won
        store.complete("acme", keys["old-done"], '{"status": "delivered"}')
        _age(store, "acme", keys["old-done"], 8)
        _age(store, "acme", keys["old-pending"], 8)
        _age(store, "acme", keys["young"], 6)
        assert store.purge(7) == 2
        assert store.get("acme", keys["old-done"]) is None
        assert store.get("acme", keys["old-pending"]) is None  # left by a crash a week ago
        assert store.get("acme", keys["young"]) is not None
        assert store.claim("acme", keys["old-done"], "another digest").won  # usable again
    finally:
        store.close()
        engine.dispose()


def test_purge_deletes_only_records_older_than_the_retention_on_sqlite(tmp_path: Path) -> None:
    _purges_only_old_records(f"sqlite:///{tmp_path / 'store.sqlite3'}")


def test_purge_deletes_only_records_older_than_the_retention_on_postgresql(
    postgres_url: str,
) -> None:
    _purges_only_old_records(postgres_url)


async def test_a_large_backlog_is_purged_a_batch_per_store_call_over_passes(
    make_pipeline: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each store call deletes one batch in one short transaction; a pass makes at most
    PURGE_BATCHES of them, pausing in between, and the next pass goes on. A keyed delivery
    between two batches claims its key (the write lock is free between them)."""
    monkeypatch.setattr(idempotency_module, "PURGE_BATCH", 3)
    monkeypatch.setattr(key_retention, "PURGE_BATCH", 3)
    monkeypatch.setattr(key_retention, "PURGE_BATCHES", 2)
    primary = ScriptedProvider("primary")
    pipeline: Pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),))
    for number in range(10):
        await pipeline.deliver(request(idempotency_key=f"k{number}"))
        _age(pipeline.idempotency, "acme", f"k{number}", 30)
    store = pipeline.idempotency
    real_purge = store.purge
    between: list[str] = []

    def purge_then_deliver(days: float) -> int:  # the real batch; a claim comes in after it
        count = real_purge(days)
        between.append(str(store.claim("acme", f"between-{len(between)}", "digest").won))
        return count

    store.purge = purge_then_deliver  # type: ignore[method-assign, assignment]
    assert [await pipeline.key_retention.purge() for _ in range(3)] == [6, 4, 0]
    assert between == ["True"] * 5  # 2 + 2 + 1 batches


async def test_the_background_pass_frees_a_key_past_the_retention(
    make_pipeline: PipelineFactory,
) -> None:
    primary = ScriptedProvider("primary")
    pipeline: Pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),))
    await pipeline.deliver(request(idempotency_key="last-week"))
    await pipeline.deliver(request(idempotency_key="today"))
    _age(pipeline.idempotency, "acme", "last-week", 8)
    await pipeline.start_background()  # its first pass runs at once
    await pipeline.key_retention.passes.wait()
    assert pipeline.key_retention.deleted == 1
    again = await pipeline.deliver(request(idempotency_key="last-week"))
    replayed = await pipeline.deliver(request(idempotency_key="today"))
    assert (again.status, again.replayed) == ("delivered", False)
    assert replayed.replayed
    assert len(primary.sent) == 3


def test_a_retention_under_a_day_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="idempotency_retention_days"):
        Settings(_env_file=None, data_dir=tmp_path, idempotency_retention_days=0.5)
