"""A database that is locked, silent or unreachable costs a store call its timeout and a
clear StoreUnavailableError, never a hang and never a blocked event loop."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from runtime.errors import StoreUnavailableError
from runtime.store import (
    DefaultSenderUsage,
    IdempotencyStore,
    StoreExecutor,
    create_engine_for,
    migrate,
)
from runtime.store.idempotency import Claim
from tests.store.conftest import sqlite_url
from tests.store.faults import FrozenProxy, LoopLagProbe, sqlite_write_lock

TIMEOUT = 1.0
# CI is a loaded 2-core machine: a call that honours its 1 s timeout may still need a few
# seconds of wall time to be scheduled; a hang would take forever, so 6 s tells them apart.
BOUND = TIMEOUT + 5.0


def _calls(engine: Engine) -> dict[str, tuple[Callable[..., Any], tuple[Any, ...]]]:
    idempotency = IdempotencyStore(engine)
    usage = DefaultSenderUsage(engine)
    key = uuid.uuid4().hex
    return {
        "claim": (idempotency.claim, ("acme", key, "digest")),
        "complete": (idempotency.complete, ("acme", key, "{}")),
        "reserve": (usage.reserve, ("acme", 100)),
    }


@pytest.mark.parametrize("call", ["claim", "complete", "reserve"])
async def test_sqlite_write_lock_held_elsewhere_fails_within_timeout_loop_free(
    tmp_path: Path, call: str
) -> None:
    url = sqlite_url(tmp_path)
    engine = create_engine_for(url, timeout=TIMEOUT)
    migrate(engine)
    fn, args = _calls(engine)[call]
    executor = StoreExecutor()
    try:
        with sqlite_write_lock(tmp_path / "data" / "phone-actions.sqlite3"):
            async with LoopLagProbe() as probe:
                started = time.perf_counter()
                with pytest.raises(StoreUnavailableError) as caught:
                    await executor.run(fn, *args, timeout=TIMEOUT * 3)
                elapsed = time.perf_counter() - started
        message = str(caught.value)
        assert "\n" not in message
        assert str(tmp_path / "data" / "phone-actions.sqlite3") in message
        assert "locked" in message
        assert TIMEOUT * 0.9 <= elapsed < BOUND  # the busy timeout, not the executor's 3 s
        # The lock is held >= 1 s; a loop blocked by the call would show a gap that long.
        # Half of it leaves room for a loaded machine's scheduling.
        assert probe.longest < TIMEOUT / 2
        await executor.run(fn, *args, timeout=BOUND)  # lock released: the same call succeeds
    finally:
        executor.shutdown()
        engine.dispose()


async def test_executor_deadline_frees_the_caller_before_the_database_gives_up(
    tmp_path: Path,
) -> None:
    """The executor's own deadline holds even when the database would wait longer."""
    engine = create_engine_for(sqlite_url(tmp_path), timeout=30)
    migrate(engine)
    store = IdempotencyStore(engine)
    executor = StoreExecutor()
    try:
        with sqlite_write_lock(tmp_path / "data" / "phone-actions.sqlite3"):
            started = time.perf_counter()
            with pytest.raises(StoreUnavailableError, match="did not answer within 1 s"):
                await executor.run(store.claim, "acme", "k", "d", timeout=TIMEOUT)
            assert time.perf_counter() - started < BOUND
    finally:
        executor.shutdown()  # the thread got the lock once the holder let go: it finishes
        store.close()
        engine.dispose()


def _proxied_store(proxy: FrozenProxy, postgres_url: str) -> tuple[Engine, IdempotencyStore]:
    engine = create_engine_for(proxy.url(postgres_url), timeout=TIMEOUT)
    return engine, IdempotencyStore(engine)


async def test_postgresql_behind_a_proxy_frozen_before_connect(postgres_url: str) -> None:
    migrate(create_engine_for(postgres_url))
    proxy = FrozenProxy(("127.0.0.1", 5432), forwarding=False)
    engine, store = _proxied_store(proxy, postgres_url)
    executor = StoreExecutor()
    try:
        async with LoopLagProbe() as probe:
            started = time.perf_counter()
            with pytest.raises(StoreUnavailableError) as caught:
                await executor.run(store.claim, "acme", uuid.uuid4().hex, "d", timeout=TIMEOUT)
            elapsed = time.perf_counter() - started
        assert elapsed < BOUND
        assert probe.longest < TIMEOUT / 2
        assert f"127.0.0.1:{proxy.port}" in str(caught.value)
    finally:
        proxy.close()
        executor.shutdown()  # returns: the connect attempt ends at connect_timeout
        store.close()
        engine.dispose()


async def test_postgresql_behind_a_proxy_frozen_mid_call(postgres_url: str) -> None:
    migrate(create_engine_for(postgres_url))
    proxy = FrozenProxy(("127.0.0.1", 5432))
    engine, store = _proxied_store(proxy, postgres_url)
    executor = StoreExecutor()
    key = uuid.uuid4().hex
    try:
        claim = await executor.run(store.claim, "acme", key, "d", timeout=BOUND)
        assert claim.won  # connected and answering through the proxy
        proxy.freeze()
        async with LoopLagProbe() as probe:
            started = time.perf_counter()
            with pytest.raises(StoreUnavailableError, match="did not answer within 1 s"):
                await executor.run(store.complete, "acme", key, "{}", timeout=TIMEOUT)
            elapsed = time.perf_counter() - started
        assert elapsed < BOUND
        assert probe.longest < TIMEOUT / 2
    finally:
        proxy.close()  # the silent connection is dropped: the stuck thread gets its error
        executor.shutdown()
        store.close()
        engine.dispose()


def test_unreachable_postgresql_names_the_database_with_the_password_masked() -> None:
    import socket

    with socket.socket() as s:  # a port on 127.0.0.1 that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = create_engine_for(f"postgresql+psycopg://app:s3cret@127.0.0.1:{port}/x", timeout=1)
    with pytest.raises(StoreUnavailableError) as caught:
        migrate(engine)
    message = str(caught.value)
    assert "s3cret" not in message
    assert f"app:***@127.0.0.1:{port}/x" in message
    assert "\n" not in message
    with pytest.raises(StoreUnavailableError, match=r"claim \(connecting\) failed"):
        IdempotencyStore(engine).claim("acme", "k", "d")


@pytest.mark.parametrize(
    "url", ["not a url", "mysql://root:pw@127.0.0.1/db", "postgresql+nodriver://x@127.0.0.1/db"]
)
def test_bad_database_url_is_one_line_naming_the_setting(url: str) -> None:
    from runtime.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        create_engine_for(url)
    message = str(caught.value)
    assert message.startswith("PHONE_ACTIONS_DATABASE_URL: ")
    assert "\n" not in message
    assert "pw" not in message


def test_postgresql_store_calls_take_one_round_trip_each(postgres_url: str) -> None:
    """Claim, complete and read are one statement each on a kept connection: no pool
    checkout ping, no BEGIN/COMMIT (counted at a proxy as the client's writes)."""
    migrate(create_engine_for(postgres_url))
    proxy = FrozenProxy(("127.0.0.1", 5432))
    engine, store = _proxied_store(proxy, postgres_url)
    try:
        store.get("acme", "warm-up")  # connects (the handshake takes several round trips)
        for _ in range(6):  # psycopg prepares a statement on its 5th run: past that
            key = uuid.uuid4().hex
            store.claim("acme", key, "d")
            store.complete("acme", key, "{}")
            store.get("acme", key)
        before = proxy.client_writes
        keys = [uuid.uuid4().hex for _ in range(20)]
        for key in keys:
            store.claim("acme", key, "d")
            store.complete("acme", key, "{}")
            store.get("acme", key)
        assert proxy.client_writes - before == 3 * len(keys)
    finally:
        store.close()
        engine.dispose()
        proxy.close()


def test_a_claim_whose_answer_was_lost_is_still_won_when_tried_again(postgres_url: str) -> None:
    """The server runs and commits a claim's INSERT, and the connection is reset before its
    answer arrives: the statement runs again on a new connection and meets its own row. It is
    this claim's (its claim id), so it is won: taken for another request's, it blocked the key
    forever with nothing sent. The same for a batch of claims."""
    migrate(create_engine_for(postgres_url))
    proxy = FrozenProxy(("127.0.0.1", 5432))
    engine, store = _proxied_store(proxy, postgres_url)
    keys = [uuid.uuid4().hex for _ in range(4)]
    try:
        assert store.claim("acme", uuid.uuid4().hex, "d").won  # connected through the proxy
        proxy.reset_after_answer(b"INSERT INTO idempotency_records")
        alone = store.claim("acme", keys[0], "d")
        proxy.reset_after_answer(b"INSERT INTO idempotency_records")
        batch = store.claim_many([("acme", key, "d") for key in (*keys[1:], keys[1])])
        assert proxy.cuts == 2
        assert alone.won
        assert [c.won for c in batch if isinstance(c, Claim)] == [True, True, True, False]
        again = store.claim("acme", keys[0], "d")  # another request with the same key
        assert (again.won, again.report) == (False, None)
    finally:
        proxy.close()
        store.close()
        engine.dispose()


def test_a_reservation_whose_answer_was_lost_counts_as_its_own(postgres_url: str) -> None:
    """The server counts a default-sender reservation (the upsert commits) and the connection
    is reset before its answer arrives: the reservation is recognised by its id, as counted
    and this caller's, so its message is sent. Taken for a failure, it stayed counted against
    the tenant's cap with nothing sent."""
    migrate(create_engine_for(postgres_url))
    proxy = FrozenProxy(("127.0.0.1", 5432))
    engine = create_engine_for(proxy.url(postgres_url), timeout=2)
    usage = DefaultSenderUsage(engine)
    tenant = f"t-{uuid.uuid4().hex[:16]}"
    try:
        assert usage.reserve(tenant, 5)  # connected through the proxy
        proxy.reset_after_answer(b"INSERT INTO default_sender_usage")
        assert usage.reserve(tenant, 5)
        assert proxy.cuts == 1
        assert usage.used(tenant) == 2
    finally:
        proxy.close()
        usage.close()
        engine.dispose()
