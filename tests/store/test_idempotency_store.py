"""Idempotency records on SQLite and PostgreSQL: claim ages for stale-key handling, release of
pending claims only, one connection kept."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update

from runtime.errors import StoreUnavailableError
from runtime.store import IdempotencyStore, create_engine_for, migrate
from runtime.store.idempotency import Claim
from runtime.store.schema import idempotency_records


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


def test_stale_pending_claims_are_found_and_settled_once(engine: Engine, tenant: str) -> None:
    """The sweep's two calls: ``stale`` lists pending claims that say where they went, older
    than the cut-off (through their partial index); ``settle`` stores an answer only while
    the claim is pending and still the same claim, and says which answer the record holds."""
    store = IdempotencyStore(engine)
    phone = "+14155552671"
    crashed = store.claim(tenant, "crashed", "d", phone, "voice", "enrollment")
    store.claim(tenant, "done", "d", phone, "sms", "verification")
    store.complete(tenant, "done", '{"status": "delivered"}')
    store.claim(tenant, "older-kind", "d")  # made before claims said where they went
    young = store.claim(tenant, "young", "d", phone, "sms", "verification")
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    table = idempotency_records.c
    with engine.begin() as conn:  # all but the young one were claimed an hour ago
        conn.execute(
            update(idempotency_records)
            .where(table.tenant == tenant, table.key != "young")
            .values(created_at=long_ago)
        )

    stale = [c for c in store.stale(60) if c.tenant == tenant]
    assert [(c.key, c.recipient, c.channel, c.purpose) for c in stale] == [
        ("crashed", phone, "voice", "enrollment")
    ]
    assert (stale[0].claim_id, stale[0].created_at) == (crashed.claim_id, long_ago)
    assert young.won

    first = '{"status": "failed", "n": 1}'
    assert store.settle(tenant, "crashed", crashed.claim_id, first) == first
    assert store.settle(tenant, "crashed", crashed.claim_id, '{"n": 2}') == first  # kept
    assert store.settle(tenant, "young", "another-claim", '{"n": 3}') is None  # not its claim
    held = store.get(tenant, "young")
    assert held is not None
    assert held.report is None
    assert [c.key for c in store.stale(60) if c.tenant == tenant] == []
    store.close()


def test_keys_are_per_tenant_and_fingerprints_are_kept(engine: Engine, tenant: str) -> None:
    store = IdempotencyStore(engine)
    assert store.claim(tenant, "k", "first").won
    assert store.claim(f"{tenant}-b", "k", "second").won
    held = store.claim(tenant, "k", "second")
    assert (held.won, held.fingerprint, held.report) == (False, "first", None)
    store.close()


def test_claims_together_win_each_key_once(engine: Engine, tenant: str) -> None:
    """claim_many (keys at 50 in flight): one transaction; each key won by one request only,
    also when it comes twice in the batch or is held already, with the holder's record."""
    store = IdempotencyStore(engine)
    assert store.claim(tenant, "held", "first").won
    outcomes = store.claim_many(
        [(tenant, "a", "d1"), (tenant, "b", "d2"), (tenant, "a", "d3"), (tenant, "held", "d4")]
    )
    claims = [o for o in outcomes if isinstance(o, Claim)]
    assert len(claims) == 4
    assert [(c.won, c.fingerprint) for c in claims] == [
        (True, "d1"),
        (True, "d2"),
        (False, "d1"),  # the second request for "a" meets the first one's claim
        (False, "first"),
    ]
    assert claims[0].created_at == claims[2].created_at
    store.close()


def test_completions_together_run_before_once_then_store_every_report(
    engine: Engine, tenant: str
) -> None:
    """complete_many: ``before`` gets every payload in one call (the pipeline's log lines, one
    write), while the records are still pending; then every report is stored."""
    store = IdempotencyStore(engine)
    store.claim_many([(tenant, "a", "d"), (tenant, "b", "d"), (tenant, "c", "d")])
    seen: list[tuple[Any, ...]] = []

    def before(*payloads: Any) -> None:
        pending = [store.get(tenant, key) for key in ("a", "b", "c")]
        seen.append((payloads, [record.report if record else "missing" for record in pending]))

    done = store.complete_many(
        [
            (tenant, "a", '{"n": 1}', "lines-a"),
            (tenant, "b", '{"n": 2}', None),
            (tenant, "c", '{"n": 3}', "lines-c"),
        ],
        before,
    )
    assert done == [None, None, None]
    assert seen == [(("lines-a", "lines-c"), [None, None, None])]
    reports = [store.get(tenant, key) for key in ("a", "b", "c")]
    assert [r.report if r else None for r in reports] == ['{"n": 1}', '{"n": 2}', '{"n": 3}']
    store.close()


def test_claims_together_are_all_or_nothing_under_a_held_lock(tmp_path: Path) -> None:
    """Another connection holds SQLite's write lock past the timeout: the batch fails as a
    whole, with the database named, and claims nothing."""
    url = f"sqlite:///{tmp_path / 'keys.sqlite3'}"
    made = create_engine_for(url, timeout=0.2)
    migrate(made)
    store = IdempotencyStore(made)
    holder = sqlite3.connect(tmp_path / "keys.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailableError, match=r"keys\.sqlite3: claim failed"):
            store.claim_many([("t", "a", "d"), ("t", "b", "d")])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.get("t", "a") is None
    assert [c.won for c in store.claim_many([("t", "a", "d"), ("t", "b", "d")])] == [True, True]  # type: ignore[union-attr]
    store.close()
    made.dispose()


def test_claim_batches_of_two_nodes_never_deadlock_on_postgresql(fresh_postgres_url: str) -> None:
    """Two nodes claim the same keys in opposite orders while a third request holds one of
    them: each batch takes its keys in one order, so the second waits for the first instead
    of PostgreSQL breaking a lock cycle by failing a whole batch."""
    import psycopg
    from sqlalchemy.engine import make_url

    first_engine = create_engine_for(fresh_postgres_url, timeout=10)
    migrate(first_engine)
    second_engine = create_engine_for(fresh_postgres_url, timeout=10)
    nodes = [IdempotencyStore(first_engine), IdempotencyStore(second_engine)]
    dsn = make_url(fresh_postgres_url).set(drivername="postgresql").render_as_string(False)
    holder, watcher = psycopg.connect(dsn), psycopg.connect(dsn, autocommit=True)
    holder.execute(
        "INSERT INTO idempotency_records (tenant, key, fingerprint, created_at) "
        "VALUES ('t', 'x', 'held', now())"
    )
    outcomes: dict[int, Any] = {}

    def claim(node: int, keys: list[str]) -> None:
        try:
            outcomes[node] = nodes[node].claim_many([("t", key, f"n{node}") for key in keys])
        except Exception as exc:  # the failure this test is about
            outcomes[node] = exc

    def waiting_for_locks(count: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # a condition on the server, not a pause
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone()
            if row is not None and row[0] >= count:
                return
            time.sleep(0.01)
        raise AssertionError(f"{count} claims never waited for a lock")

    threads = [
        threading.Thread(target=claim, args=(0, ["a", "x", "b"])),
        threading.Thread(target=claim, args=(1, ["b", "a"])),
    ]
    try:
        threads[0].start()
        waiting_for_locks(1)  # node 0 holds its keys up to x
        threads[1].start()
        waiting_for_locks(2)  # node 1 waits for node 0
        holder.rollback()  # x is free: node 0 finishes, then node 1
        for thread in threads:
            thread.join(30)
    finally:
        holder.close()
        watcher.close()
    assert [c.won for c in outcomes[0]] == [True, True, True]
    assert [(c.won, c.fingerprint) for c in outcomes[1]] == [(False, "n0"), (False, "n0")]
    for node in nodes:
        node.close()
    first_engine.dispose()
    second_engine.dispose()
