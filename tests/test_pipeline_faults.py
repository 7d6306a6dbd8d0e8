"""The pipeline keeps its promise under faults: a held database lock, a cancelled caller, a key
left pending by a crash, a store that fails after sending. Each fault is real: another SQLite
connection holds the write lock, a caller really cancels, a claim really is left pending."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from plugins.outbox import OutboxProvider
from runtime import ProviderError, hookimpl
from runtime.delivery import Pipeline, request_fingerprint
from runtime.store.schema import idempotency_records
from runtime.tenants import TomlTenantDirectory
from tests.conftest import PipelineFactory, make_settings, read_log
from tests.fake_providers import ProvidersPlugin, ScriptedProvider
from tests.store.faults import FrozenProxy
from tests.test_delivery import request, tenant


def database(pipeline: Pipeline) -> Path:
    return pipeline.settings.data_dir / "phone-actions.sqlite3"


@contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Another connection (as another process would) holds SQLite's write lock."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


class LoopLag:
    """Measures the longest stretch the event loop did not run a 5 ms ticker."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0.005)
            now = loop.time()
            self.worst = max(self.worst, now - last - 0.005)
            last = now

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def test_a_held_write_lock_never_blocks_the_loop(make_pipeline: PipelineFactory) -> None:
    """While another process holds SQLite's write lock, keyed requests wait on the store's
    own threads: the loop keeps serving, unkeyed deliveries go out, and when the lock is held
    past the store timeout the keyed ones are refused as store_unavailable (nothing sent),
    never reported as a provider timeout."""
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),), store_timeout=0.5)
    await pipeline.deliver(request(idempotency_key="warm-up"))  # the database exists
    with LoopLag() as lag, write_lock(database(pipeline)):
        keyed = [
            asyncio.ensure_future(pipeline.deliver(request(idempotency_key=f"k{i}")))
            for i in range(20)
        ]
        plain = await asyncio.gather(*(pipeline.deliver(request()) for _ in range(20)))
        refused = await asyncio.gather(*keyed)
    assert {r.status for r in plain} == {"delivered"}
    assert {(r.status, r.reason) for r in refused} == {("rejected", "store_unavailable")}
    assert all("nothing was sent" in (r.detail or "") for r in refused)
    assert len(primary.sent) == 21  # the warm-up and the 20 unkeyed ones
    # A claim run on the loop would stall it for the whole store timeout (0.5 s per call, 20
    # calls); under it, with room for a loaded CI machine's scheduling and the GIL shared with
    # the store's threads (tens of ms).
    assert lag.worst < 0.45
    events = read_log(pipeline)
    assert len(events) == 41  # every delivery and every refusal has its log event


async def test_a_lock_shorter_than_the_store_timeout_only_delays(
    make_pipeline: PipelineFactory,
) -> None:
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),), store_timeout=10)
    await pipeline.deliver(request(idempotency_key="warm-up"))
    started = threading.Event()

    def hold_then_release(path: Path, until: threading.Event) -> None:
        with write_lock(path):
            started.set()
            until.wait(10)

    release = threading.Event()
    holder = threading.Thread(target=hold_then_release, args=(database(pipeline), release))
    holder.start()
    started.wait(10)
    tasks = [
        asyncio.ensure_future(pipeline.deliver(request(idempotency_key=f"k{i}"))) for i in range(20)
    ]
    await asyncio.sleep(0)  # the claims are queued behind the lock
    release.set()
    reports = await asyncio.gather(*tasks)
    holder.join()
    assert {r.status for r in reports} == {"delivered"}
    assert len(primary.sent) == 21


async def test_a_cancelled_caller_does_not_stop_a_started_delivery(
    make_pipeline: PipelineFactory,
) -> None:
    """wait_for() gives up while the provider is sending: the delivery finishes anyway, its
    key gets the report, and its log event is written."""
    inside, release = asyncio.Event(), asyncio.Event()

    async def slow(_message: Any) -> str:
        inside.set()
        await release.wait()
        return "sent-1"

    primary = ScriptedProvider("primary", slow)
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),))
    caller = asyncio.ensure_future(pipeline.deliver(request(idempotency_key="cancelled")))
    await inside.wait()
    caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    assert caller.cancelled()
    release.set()
    await pipeline.drain()

    again = await pipeline.deliver(request(idempotency_key="cancelled"))
    assert again.replayed
    assert again.status == "delivered"
    assert again.attempts[0].message_id == "sent-1"
    assert len(primary.sent) == 1
    assert [e["type"] for e in read_log(pipeline)] == ["gd_send_sms"]


async def test_a_caller_cancelled_before_any_provider_frees_its_key(
    make_pipeline: PipelineFactory,
) -> None:
    """Cancelled while its claim waits for the database: nothing is sent, and the key is
    free again, so the user's retry delivers."""
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),), store_timeout=10)
    await pipeline.deliver(request(idempotency_key="warm-up"))
    release = threading.Event()
    locked = threading.Event()

    def hold(path: Path) -> None:
        with write_lock(path):
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold, args=(database(pipeline),))
    holder.start()
    locked.wait(10)
    store = pipeline.idempotency
    claiming = threading.Event()
    real_claim = store.claim_many

    def observed_claim(*args: Any) -> Any:  # the real claim, which tells the test it began
        claiming.set()
        return real_claim(*args)

    store.claim_many = observed_claim  # type: ignore[method-assign, assignment]
    caller = asyncio.ensure_future(pipeline.deliver(request(idempotency_key="gave-up")))
    await asyncio.to_thread(claiming.wait, 10)  # the claim is waiting for the lock
    caller.cancel()
    release.set()
    await asyncio.gather(caller, return_exceptions=True)
    holder.join()
    await pipeline.drain()
    assert len(primary.sent) == 1  # only the warm-up
    retry = await pipeline.deliver(request(idempotency_key="gave-up"))
    assert (retry.status, retry.replayed) == ("delivered", False)
    assert len(primary.sent) == 2


async def test_a_stale_pending_key_is_answered_outcome_unknown_at_once(
    make_pipeline: PipelineFactory,
) -> None:
    """A claim left by a crash, older than the delivery budget plus the grace period, is
    answered at once, never waited for, never sent again."""
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(
        tenant(),
        plugins=(ProvidersPlugin(primary),),
        idempotency_wait=3600,  # the test would hang if the stale claim were waited for
        idempotency_grace=0,
    )
    r = request(idempotency_key="crashed")
    store = pipeline.idempotency
    store.claim("acme", "crashed", request_fingerprint(r), r.recipient, r.channel, r.purpose)
    long_ago = datetime.now(UTC) - timedelta(seconds=pipeline.delivery_budget + 1)
    with store._engine.begin() as conn:  # the crash happened long ago
        conn.execute(update(idempotency_records).values(created_at=long_ago))

    report = await pipeline.deliver(r)
    assert (report.status, report.reason) == ("failed", "outcome_unknown")
    assert "never sent again" in (report.detail or "")
    assert primary.sent == []
    # stored on the record by this retry, which logged it: the sweep, and the next retry,
    # find it accounted for and log nothing more
    assert await pipeline.stale_claims.sweep() == 0
    again = await pipeline.deliver(r)
    assert (again.reason, again.replayed, again.id) == ("outcome_unknown", True, report.id)
    unknown = [
        e
        for e in read_log(pipeline)
        if e["details"].get("failure_details", {}).get("errorCode") == "outcome_unknown"
    ]
    assert [e["details"]["delivery_id"] for e in unknown] == [report.id]


async def test_a_young_pending_key_is_waited_for_then_refused(
    make_pipeline: PipelineFactory,
) -> None:
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),), idempotency_wait=0.05)
    r = request(idempotency_key="running-elsewhere")
    pipeline.idempotency.claim("acme", "running-elsewhere", request_fingerprint(r))
    report = await pipeline.deliver(r)
    assert (report.status, report.reason) == ("rejected", "idempotency_in_progress")
    assert primary.sent == []


async def test_a_store_failure_after_sending_still_reports_and_logs(
    make_pipeline: PipelineFactory,
) -> None:
    """The database locks up while the provider sends: the caller still gets the report,
    which says the message was sent, and the log event is written."""
    holder: list[sqlite3.Connection] = []

    def lock_the_database(_message: Any) -> str:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
        holder.append(conn)
        return "sent-1"

    primary = ScriptedProvider("primary", lock_the_database)
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),), store_timeout=0.3)
    path = database(pipeline)
    pipeline.idempotency  # noqa: B018 - the database exists before the provider locks it
    try:
        report = await pipeline.deliver(request(idempotency_key="k"))
    finally:
        for conn in holder:
            conn.execute("ROLLBACK")
            conn.close()
    assert (report.status, report.reason) == ("delivered", "store_unavailable")
    assert "the message was sent by primary" in (report.detail or "")
    [event] = read_log(pipeline)
    assert event["type"] == "gd_send_sms"
    assert event["details"]["delivery_id"] == report.id
    # whether the late write landed after the lock went (a replay) or not (still pending),
    # a retry never sends again
    retry = await pipeline.deliver(request(idempotency_key="k"))
    assert retry.replayed or retry.reason in ("idempotency_in_progress", "outcome_unknown")
    assert len(primary.sent) == 1


async def test_a_completion_that_never_ran_still_logs_once(
    make_pipeline: PipelineFactory,
) -> None:
    """The store's one thread is busy past the store timeout when the delivery ends, so its
    record is never stored: the report says so, and the log event is still written, once."""
    release = threading.Event()

    def occupy_the_store(_message: Any) -> str:
        pipeline._submit(release.wait, 10)  # the store's only thread waits on this
        return "sent-1"

    primary = ScriptedProvider("primary", occupy_the_store)
    pipeline = make_pipeline(
        tenant(), plugins=(ProvidersPlugin(primary),), store_timeout=0.3, store_workers=1
    )
    try:
        report = await pipeline.deliver(request(idempotency_key="k"))
    finally:
        release.set()
    assert (report.status, report.reason) == ("delivered", "store_unavailable")
    assert "the message was sent by primary" in (report.detail or "")
    [event] = read_log(pipeline)
    assert event["details"]["delivery_id"] == report.id
    # the call that timed out in the queue never ran: the record is owed, and stored once the
    # store answers; until then the sweep of stale claims leaves the key alone (no second event)
    assert pipeline.owed.owes("acme", "k")
    long_ago = datetime.now(UTC) - timedelta(seconds=pipeline.delivery_budget + 61)
    with pipeline.idempotency._engine.begin() as conn:  # stale, yet accounted: not swept
        conn.execute(update(idempotency_records).values(created_at=long_ago))
    assert await pipeline.stale_claims.sweep() == 0
    early = await pipeline.deliver(request(idempotency_key="k"))  # the answer it owes
    assert (early.status, early.replayed, early.id) == ("delivered", True, report.id)
    assert await pipeline.owed.pay()
    retry = await pipeline.deliver(request(idempotency_key="k"))
    assert (retry.status, retry.replayed, retry.id) == ("delivered", True, report.id)
    assert len(primary.sent) == 1
    assert len(read_log(pipeline)) == 1


class SeesReports:
    """An ``after_send`` observer: it runs once the report exists, as the key is completed."""

    def __init__(self) -> None:
        self.seen: dict[str, asyncio.Event] = {}

    def event(self, key: str) -> asyncio.Event:
        return self.seen.setdefault(key, asyncio.Event())

    @hookimpl
    def after_send(self, request: Any, report: Any) -> None:
        if request.idempotency_key:
            self.event(request.idempotency_key).set()


class HeldCompletion:
    """Holds the batch that stores ``key``'s record until ``release`` is set (``entered``
    says it is under way), so the records that come next queue up behind it."""

    def __init__(self, pipeline: Pipeline, key: str) -> None:
        store = pipeline.idempotency
        real_complete = store.complete_many
        self.entered, self.release = threading.Event(), threading.Event()

        def held(completions: Any, before: Any = None) -> Any:
            if any(each[1] == key for each in completions):
                self.entered.set()
                self.release.wait(10)
            return real_complete(completions, before)

        store.complete_many = held  # type: ignore[method-assign]


async def test_a_caller_cancelled_after_its_report_still_gets_it_logged_and_stored(
    make_pipeline: PipelineFactory,
) -> None:
    """A keyed request refused before sending (unknown tenant) whose caller gives up while its
    key's record waits behind another batch: the record is still stored and the event
    written."""
    seen = SeesReports()
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary), seen))
    store = pipeline.idempotency
    held = HeldCompletion(pipeline, "a")
    try:
        other = asyncio.ensure_future(pipeline.deliver(request(idempotency_key="a")))
        await asyncio.to_thread(held.entered.wait, 10)
        caller = asyncio.ensure_future(
            pipeline.deliver(request(tenant="nobody", idempotency_key="k"))
        )
        await asyncio.wait_for(seen.event("k").wait(), 10)  # the report exists, record queued
        caller.cancel()
        await asyncio.gather(caller, return_exceptions=True)
    finally:
        held.release.set()
    assert (await other).status == "delivered"
    await pipeline.drain()
    codes = [e["details"].get("failure_details", {}).get("errorCode") for e in read_log(pipeline)]
    assert sorted(codes, key=str) == [None, "unknown_tenant"]
    record = store.get("nobody", "k")
    assert record is not None
    assert record.report is not None


async def test_a_delivery_task_cancelled_while_its_record_waits_still_logs_once(
    make_pipeline: PipelineFactory,
) -> None:
    """The delivery task itself is cancelled (as when a loop is torn down) while its key's
    record waits behind another batch: its lines go to the log's writer thread, once."""
    seen = SeesReports()
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary), seen))
    held = HeldCompletion(pipeline, "a")
    try:
        other = asyncio.ensure_future(pipeline.deliver(request(idempotency_key="a")))
        await asyncio.to_thread(held.entered.wait, 10)
        tasks_before = set(pipeline._inflight)
        caller = asyncio.ensure_future(pipeline.deliver(request(idempotency_key="b")))
        await asyncio.wait_for(seen.event("b").wait(), 10)
        [task] = set(pipeline._inflight) - tasks_before
        task.cancel()
        await asyncio.gather(task, caller, return_exceptions=True)
    finally:
        held.release.set()
    await other
    await pipeline.drain()
    ids = [e["details"]["delivery_id"] for e in read_log(pipeline)]
    assert len(ids) == len(set(ids)) == 2  # both deliveries, each once


async def test_a_claim_won_after_its_deadline_is_given_back(
    make_pipeline: PipelineFactory,
) -> None:
    """The claim answers after the store timeout (the caller was told nothing was sent): the
    key it won is released, so the retry delivers rather than finding it held forever."""
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(
        tenant(), plugins=(ProvidersPlugin(primary),), store_timeout=0.3, store_workers=1
    )
    store = pipeline.idempotency
    real_claim = store.claim_many
    release = threading.Event()

    def slow_claim(requests: Any) -> Any:
        release.wait(10)
        return real_claim(requests)

    store.claim_many = slow_claim  # type: ignore[method-assign]
    given_back = asyncio.Event()
    real_late = pipeline._late_claim

    def late(*args: Any) -> None:
        real_late(*args)
        given_back.set()

    pipeline._late_claim = late  # type: ignore[method-assign, assignment]
    try:
        first = await pipeline.deliver(request(idempotency_key="k"))
    finally:
        release.set()
    assert (first.status, first.reason) == ("rejected", "store_unavailable")
    await asyncio.wait_for(given_back.wait(), 10)  # a bound, not a pause: it comes at once
    assert await pipeline.owed.pay()  # given back (now, or by the tries already under way)
    store.claim_many = real_claim  # type: ignore[method-assign]
    assert store.get("acme", "k") is None
    retry = await pipeline.deliver(request(idempotency_key="k"))
    assert (retry.status, retry.replayed) == ("delivered", False)
    assert len(primary.sent) == 1


async def test_a_delivery_after_shutdown_began_is_refused_and_logged(
    make_pipeline: PipelineFactory,
) -> None:
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),))
    pipeline.begin_shutdown()
    report = await pipeline.deliver(request())
    assert (report.status, report.reason) == ("rejected", "shutting_down")
    assert primary.sent == []
    assert [e["details"]["failure_details"]["errorCode"] for e in read_log(pipeline)] == [
        "shutting_down"
    ]


async def test_a_postgresql_partition_never_hangs_a_delivery(
    make_pipeline: PipelineFactory, postgres_url: str
) -> None:
    """PostgreSQL goes silent mid-burst (a frozen TCP proxy): keyed requests are answered
    store_unavailable within the store timeout, nothing is sent twice, the loop keeps serving
    unkeyed deliveries, and the pipeline still closes."""
    import time
    import uuid

    from tests.store.faults import FrozenProxy

    proxy = FrozenProxy(("127.0.0.1", 5432))
    try:
        primary = ScriptedProvider("primary")
        pipeline = make_pipeline(
            tenant(),
            plugins=(ProvidersPlugin(primary),),
            database_url=proxy.url(postgres_url),
            store_timeout=1.0,
        )
        run = uuid.uuid4().hex
        first = await pipeline.deliver(request(idempotency_key=f"{run}-0"))
        assert first.status == "delivered"
        proxy.freeze()
        started = time.perf_counter()
        with LoopLag() as lag:
            keyed = await asyncio.gather(
                *(pipeline.deliver(request(idempotency_key=f"{run}-{i}")) for i in range(1, 6))
            )
            plain = await pipeline.deliver(request())
        elapsed = time.perf_counter() - started
        assert {(r.status, r.reason) for r in keyed} == {("rejected", "store_unavailable")}
        assert plain.status == "delivered"
        assert len(primary.sent) == 2
        # generous: each call ends at its 1 s timeout; a hang would last minutes
        assert elapsed < 15
        assert lag.worst < 0.5
        assert len(read_log(pipeline)) == 7
        await pipeline.aclose()  # does not wait on the silent connections
    finally:
        proxy.close()


async def test_a_passing_store_failure_before_sending_frees_the_key(
    tmp_path: Path, postgres_url: str
) -> None:
    """The service's tenant configuration lives on a PostgreSQL server that went silent (a
    frozen TCP proxy) while the idempotency keys are fine (SQLite): the request is refused
    store_unavailable with nothing sent, and its key is free again, so the retry delivers
    once the database answers rather than replaying the refusal."""
    from runtime.store import create_engine_for, migrate
    from runtime.store.crypto import Keyring
    from runtime.store.directory import StoreTenantDirectory
    from runtime.store.service import ServiceStore
    from tests.conftest import make_settings
    from tests.store.faults import FrozenProxy

    migrate(create_engine_for(postgres_url))
    proxy = FrozenProxy(("127.0.0.1", 5432))
    engine = create_engine_for(proxy.url(postgres_url), timeout=1.0)
    store = ServiceStore(engine, Keyring((os.urandom(32),)))
    store.tenants.create("acme", friendly_name="Acme")
    directory = StoreTenantDirectory(store, timeout=1.0)
    await directory.start()
    pipeline = Pipeline.from_settings(
        make_settings(tmp_path, store_timeout=1.0), tenants=directory, load_entrypoints=False
    )
    try:
        proxy.freeze()
        first = await pipeline.deliver(request(idempotency_key="passing"))
        assert (first.status, first.reason) == ("rejected", "store_unavailable")
        proxy.heal()  # the database answers again
        retry = await pipeline.deliver(request(idempotency_key="passing"))
        assert (retry.status, retry.replayed) == ("stored", False), retry.detail  # the outbox
    finally:
        await pipeline.aclose()
        await directory.aclose()
        proxy.close()
        engine.dispose()


async def test_a_tenant_lookup_on_a_silent_database_waits_the_store_timeout_only(
    postgres_url: str,
) -> None:
    """A tenant not yet held, on a PostgreSQL server gone silent: its lookup fails within the
    store timeout (2 s here), as every wait on the database does; it waited four times that."""
    from runtime.errors import StoreUnavailableError
    from runtime.store import create_engine_for, migrate
    from runtime.store.crypto import Keyring
    from runtime.store.directory import StoreTenantDirectory
    from runtime.store.service import ServiceStore
    from tests.store.faults import FrozenProxy

    migrate(create_engine_for(postgres_url))
    proxy = FrozenProxy(("127.0.0.1", 5432))
    engine = create_engine_for(proxy.url(postgres_url), timeout=2.0)
    store = ServiceStore(engine, Keyring((os.urandom(32),)))
    tenant = f"t-{os.urandom(6).hex()}"
    store.tenants.create(tenant, friendly_name="Acme")
    directory = StoreTenantDirectory(store)  # its own timeout: the store's
    try:
        proxy.freeze()
        started = time.perf_counter()
        try:
            await directory.aget(tenant)
        except StoreUnavailableError:
            pass
        else:
            raise AssertionError("a silent database answered")
        assert time.perf_counter() - started < 5.0  # 2 s, and 8 s before
    finally:
        await directory.aclose()
        proxy.close()
        engine.dispose()


async def test_a_fallback_stopped_by_the_database_frees_its_key(
    make_pipeline: PipelineFactory,
) -> None:
    """The primary refuses (nothing sent) and the default sender cannot count the message
    because another process holds the write lock: nothing went out, for a passing reason, so
    the key is freed and the retry delivers rather than replaying the failure."""
    held = threading.Event()
    release = threading.Event()
    armed = threading.Event()
    holder: list[threading.Thread] = []

    def refuse_while_the_database_is_locked(_message: Any) -> None:
        if armed.is_set() and not holder:  # lock the database, then refuse
            thread = threading.Thread(target=hold, daemon=True)
            holder.append(thread)
            thread.start()
            held.wait(10)
            raise ProviderError("rate_limited", "try later", retryable=True, handed_off=False)

    primary = ScriptedProvider("primary", refuse_while_the_database_is_locked)
    pipeline = make_pipeline(
        tenant(fallback="retryable"), plugins=(ProvidersPlugin(primary),), store_timeout=0.3
    )
    await pipeline.deliver(request(idempotency_key="warm-up"))  # tables and connections made
    primary.sent.clear()

    def hold() -> None:
        with write_lock(database(pipeline)):
            held.set()
            release.wait(10)

    store = pipeline.idempotency
    real_release = store.release

    def observed_release(*args: Any) -> None:  # the database answers again, then the release
        release.set()
        holder[0].join()
        real_release(*args)

    store.release = observed_release  # type: ignore[method-assign, assignment]
    armed.set()
    first = await pipeline.deliver(request(idempotency_key="k"))
    assert release.is_set()  # the pipeline gave the key back
    assert first.status == "failed"
    assert [(a.provider, a.error_code, a.handed_off) for a in first.attempts] == [
        ("primary", "rate_limited", False),
        ("outbox", "store_unavailable", False),
    ]
    retry = await pipeline.deliver(request(idempotency_key="k"))
    assert (retry.status, retry.replayed, retry.delivered_by) == ("delivered", False, "primary")


async def test_an_outbox_row_still_being_written_when_its_attempt_ran_out_is_never_stored_twice(
    make_pipeline: PipelineFactory,
) -> None:
    """Another process holds the write lock past the attempt's time: the outbox's insert is
    still waiting, and will be stored once the lock goes. The attempt says it may have been
    stored (handed off), so no fallback stores a second copy."""
    pipeline = make_pipeline(tenant("outbox"), attempt_timeout=0.5, store_timeout=3)
    await pipeline.deliver(request())  # tables made, connections open
    outbox: Any = pipeline.providers.get("outbox")
    with write_lock(database(pipeline)):
        done = await pipeline.deliver(request(recipient="+14155550123"))
    await asyncio.to_thread(outbox._executor.shutdown)  # joins the insert still running
    assert [(a.provider, a.error_code, a.handed_off) for a in done.attempts] == [
        ("outbox", "store_unavailable", True)
    ]
    assert (done.status, done.reason) == ("failed", "handed_off")
    assert [m.recipient for m in outbox.messages("acme")].count("+14155550123") == 1


async def test_an_outbox_commit_whose_answer_was_lost_is_never_stored_twice(
    make_pipeline: PipelineFactory, postgres_url: str
) -> None:
    """PostgreSQL commits the outbox's row, and the connection is reset before its answer
    arrives: the row may be stored, so the attempt is handed off, the key is kept, and the
    retry with it replays instead of storing the code a second time."""
    proxy = FrozenProxy(("127.0.0.1", 5432))
    try:
        pipeline = make_pipeline(
            tenant("outbox", fallback="never"),
            database_url=proxy.url(postgres_url),
            store_timeout=3,
        )
        run = uuid.uuid4().hex
        recipient = "+1415555" + str(uuid.uuid4().int % 10000).zfill(4)
        await pipeline.deliver(request(idempotency_key=f"{run}-warm-up"))
        proxy.reset_after_answer(b"COMMIT")
        first = await pipeline.deliver(request(idempotency_key=run, recipient=recipient))
        assert proxy.cuts == 1
        assert [(a.provider, a.error_code, a.handed_off) for a in first.attempts] == [
            ("outbox", "store_unavailable", True)
        ]
        retry = await pipeline.deliver(request(idempotency_key=run, recipient=recipient))
        assert retry.replayed
        outbox: Any = pipeline.providers.get("outbox")
        assert [m.recipient for m in outbox.messages("acme")].count(recipient) == 1
    finally:
        proxy.close()


async def test_a_delivery_cancelled_mid_send_by_its_loop_keeps_its_key_and_logs_an_event(
    make_pipeline: PipelineFactory, never_set: asyncio.Event
) -> None:
    """A loop torn down (asyncio.run returning) cancels the delivery task itself while the
    provider holds the message: the key keeps its claim, answered outcome_unknown, so a retry
    never sends a second code, and the log says the outcome is unknown, once (the sweep of
    stale claims finds the answer stored and logs nothing more)."""
    sending = asyncio.Event()

    async def hang(_message: Any) -> None:
        sending.set()
        await never_set.wait()

    primary = ScriptedProvider("primary", hang)
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),), idempotency_wait=0.05)
    caller = asyncio.ensure_future(pipeline.deliver(request(idempotency_key="signup-42")))
    await sending.wait()
    for task in list(pipeline._inflight):  # what the loop's teardown does to every task
        task.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    assert await asyncio.to_thread(pipeline._executor.wait_idle, 10)  # its record's store
    record = pipeline.idempotency.get("acme", "signup-42")
    assert record is not None
    assert record.report is not None  # claimed, answered, never freed
    sending.clear()
    retry = await pipeline.deliver(request(idempotency_key="signup-42"))
    assert (retry.reason, retry.replayed) == ("outcome_unknown", True)
    assert len(primary.sent) == 1  # one code
    [interrupted] = read_log(pipeline)
    assert interrupted["type"] == "gd_send_sms_failure"
    assert interrupted["details"]["failure_details"]["errorCode"] == "outcome_unknown"
    assert interrupted["details"]["delivery_id"] == retry.id


async def test_a_caller_cancelled_once_its_reservation_counted_gives_the_allowance_back(
    make_pipeline: PipelineFactory,
) -> None:
    """The reservation counted, and the delivery is cancelled (for its cancelled caller)
    before it resumes to send: what was counted against the tenant's cap is given back."""
    pipeline = make_pipeline(tenant("default"))
    await pipeline.deliver(request())  # opens the store; one message counted and stored
    usage = pipeline._usage
    assert usage is not None
    real_submit = pipeline._submit

    def submit(call: Any, *args: Any, late: Any = None) -> asyncio.Future[Any]:
        future = real_submit(call, *args, late=late)
        if call == pipeline._reserve_here:  # runs before the delivery task's wake-up: the window
            # in which deliver() cancels the delivery task for its cancelled caller
            future.add_done_callback(lambda _: [t.cancel() for t in pipeline._inflight])
        return future

    pipeline._submit = submit  # type: ignore[method-assign]
    caller = asyncio.ensure_future(pipeline.deliver(request()))
    await asyncio.gather(caller, return_exceptions=True)
    await pipeline.drain()
    assert caller.cancelled()
    outbox = pipeline.providers.get("outbox")
    assert isinstance(outbox, OutboxProvider)
    assert len(list(outbox.messages("acme"))) == 1  # nothing more was sent
    for _ in range(100):  # the refund is a store call of its own, after the caller left
        if await pipeline._store(usage.used, "acme") == 1:
            break
    assert await pipeline._store(usage.used, "acme") == 1


def test_a_pipeline_used_by_a_second_event_loop_still_opens_its_store(tmp_path: Path) -> None:
    """A pipeline outlives the loop that began opening its store (asyncio.run returned while
    the migration waited): the next loop's deliveries open it, never 'bound to a different
    event loop'."""
    pipeline = Pipeline.from_settings(
        make_settings(tmp_path),
        tenants=TomlTenantDirectory.from_mapping({"tenants": tenant()}, environ={}),
        plugins=(ProvidersPlugin(ScriptedProvider("primary")),),
        load_entrypoints=False,
    )
    real_open, release = pipeline._open_store, threading.Event()

    def slow_open() -> None:  # another process's migration lock, held
        release.wait(10)
        real_open()

    pipeline._open_store = slow_open  # type: ignore[method-assign]

    async def abandoned() -> None:  # two callers contend for the opening, then give up
        await asyncio.wait(
            [asyncio.ensure_future(pipeline.deliver(request(idempotency_key=k))) for k in "ab"],
            timeout=0.2,
        )

    asyncio.run(abandoned())  # returns while the opening waits: its tasks are cancelled
    release.set()

    async def retried() -> list[Any]:
        keys = ("c", "d", "e")
        reports = await asyncio.gather(
            *(pipeline.deliver(request(idempotency_key=k)) for k in keys)
        )
        await pipeline.aclose()
        return [r.status for r in reports]

    assert asyncio.run(retried()) == ["delivered"] * 3


@pytest.mark.parametrize("ends", ["caller_cancelled", "store_timeout"])
async def test_a_stale_claim_settled_after_its_caller_left_is_still_logged_once(
    make_pipeline: PipelineFactory, ends: str
) -> None:
    """Once a stale claim's outcome_unknown is stored, its event is written, whatever happens
    to the request that stored it: its caller cancelled while the database worked, or the
    store's answer came after its deadline. Stored without its event, the delivery would never
    be logged: later retries replay it, and the sweep no longer sees a pending claim."""
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(
        tenant(),
        plugins=(ProvidersPlugin(primary),),
        idempotency_grace=0,
        store_timeout=0.3 if ends == "store_timeout" else 5.0,
    )
    r = request(idempotency_key="slow-settle")
    store = pipeline.idempotency
    store.claim("acme", "slow-settle", request_fingerprint(r), r.recipient, r.channel, r.purpose)
    long_ago = datetime.now(UTC) - timedelta(seconds=pipeline.delivery_budget + 1)
    with store._engine.begin() as conn:  # the crash happened long ago
        conn.execute(update(idempotency_records).values(created_at=long_ago))
    entered, release = threading.Event(), threading.Event()
    real_settle = store.settle

    def slow_settle(*args: Any) -> Any:
        entered.set()
        release.wait(10)  # the database is slow: the caller leaves, or its deadline passes
        return real_settle(*args)

    store.settle = slow_settle  # type: ignore[method-assign, assignment]
    retry = asyncio.ensure_future(pipeline.deliver(r))
    assert await asyncio.to_thread(entered.wait, 10)
    if ends == "caller_cancelled":
        retry.cancel()
    else:
        await asyncio.wait({retry})  # answered store_unavailable at its deadline
    release.set()
    assert await asyncio.to_thread(pipeline._executor.wait_idle, 10)
    await pipeline.stale_claims.aclose()  # the settles under way end and write their events
    unknown = [
        e
        for e in read_log(pipeline)
        if e["details"].get("failure_details", {}).get("errorCode") == "outcome_unknown"
    ]
    assert len(unknown) == 1, read_log(pipeline)
    held = store.get("acme", "slow-settle")
    assert held is not None
    assert held.report is not None
    assert await pipeline.stale_claims.sweep() == 0
    assert primary.sent == []


def test_the_answer_for_a_stale_claim_has_one_id_whoever_gives_it() -> None:
    """A sweep on any node and a retry answer a stale claim under the same id: when two of
    them log it (one could not learn whether its answer was stored), the events share one
    log_id, which the stored log keeps once."""
    from runtime.delivery.stale_claims import interrupted_report

    sweep = interrupted_report(request(idempotency_key="k"), "claim-1")
    retry = interrupted_report(request(idempotency_key="k", locale="de"), "claim-1")
    assert sweep.id == retry.id
    assert interrupted_report(request(idempotency_key="k"), "claim-2").id != sweep.id
    assert interrupted_report(request(idempotency_key="other"), "claim-1").id != sweep.id
