"""Idempotency records on SQLite and PostgreSQL: claim ages for stale-key handling, release of
pending claims only, one connection kept."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from runtime.store import IdempotencyStore


def test_claim_reports_when_the_key_was_first_claimed(engine: Engine, tenant: str) -> None:
    store = IdempotencyStore(engine)
    before = datetime.now(UTC)
    won = store.claim(tenant, "k", "digest")
    after = datetime.now(UTC)
    lost = store.claim(tenant, "k", "digest")
    read = store.get(tenant, "k")
    store.close()

    assert won.won
    assert won.created_at is not None
    assert won.created_at.tzinfo is not None
    assert before <= won.created_at <= after
    assert not lost.won
    assert read is not None
    # The same moment comes back from the database, as UTC, to the microsecond.
    assert lost.created_at == read.created_at == won.created_at


def test_release_removes_a_pending_claim_only(engine: Engine, tenant: str) -> None:
    store = IdempotencyStore(engine)
    store.claim(tenant, "pending", "digest")
    store.claim(tenant, "done", "digest")
    store.complete(tenant, "done", '{"status": "delivered"}')

    store.release(tenant, "pending")
    store.release(tenant, "done")  # completed: may have reached a phone, so it stays
    store.release(tenant, "never-claimed")  # nothing to do

    assert store.get(tenant, "pending") is None
    done = store.get(tenant, "done")
    assert done is not None
    assert done.report == '{"status": "delivered"}'
    again = store.claim(tenant, "pending", "other-digest")  # a released key can be used anew
    assert (again.won, again.fingerprint) == (True, "other-digest")
    store.close()


def test_keys_are_per_tenant_and_fingerprints_are_kept(engine: Engine, tenant: str) -> None:
    store = IdempotencyStore(engine)
    assert store.claim(tenant, "k", "first").won
    assert store.claim(f"{tenant}-b", "k", "second").won
    held = store.claim(tenant, "k", "second")
    assert (held.won, held.fingerprint, held.report) == (False, "first", None)
    store.close()
