"""The delivery pipeline: validate, apply policy, render, route, send, fall back, account.

:meth:`Pipeline.deliver` always returns a :class:`DeliveryReport` (delivered, stored, rejected,
failed) and never raises for a bad tenant, a failing provider, a broken plugin or a failing
database. What it promises, and the fault each promise survives, is in docs/delivery.md
("What the pipeline promises"):

- fall back to the default sender only when the primary failed *without* handing the message
  off, so no user ever receives two codes;
- a report is returned only after its log event was handed to the OS;
- nothing blocks the event loop: store calls run on the pipeline's own bounded executor with
  timeouts inside the delivery budget, log lines on the log sink's own thread;
- once a provider attempt started, a cancelled caller does not stop the delivery: it finishes
  in the background, completes its idempotency key and writes its log event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from runtime import templates
from runtime.attempt_hooks import AttemptContext, DeliveryContext, applicable, run_wrapped
from runtime.delivery.attempt import (
    GRACE,
    as_provider_error,
    failed_attempt,
    log_scrubbed,
    run_attempt,
    validation_problem,
)
from runtime.delivery.default_sender import DEFAULT, DefaultSender
from runtime.delivery.key_retention import KeyRetention
from runtime.delivery.owed_records import OwedRecords
from runtime.delivery.reports import after_store_failure, rejected, report
from runtime.delivery.retries import KIND as RETRY_KIND
from runtime.delivery.retries import NotificationRetries, opened_engine
from runtime.delivery.stale_claims import StaleClaims, claim_delivery_id, interrupted_report
from runtime.errors import (
    ConfigurationError,
    ProviderError,
    StoreUnavailableError,
    UnknownTenantError,
)
from runtime.events import Attempt, DeliveryReport, PhoneMessageRequest
from runtime.ids import new_id
from runtime.logs import JsonLinesLogSink
from runtime.logs.background import StoredLog
from runtime.plugins import PhonePluginManager, collect_providers, get_plugin_manager
from runtime.policy.gate import PhonePolicy
from runtime.providers import (
    PhoneMessage,
    Provider,
    ProviderRegistry,
    Receipt,
    accepts_observer,
    reaches_phones,
)
from runtime.settings import Settings
from runtime.store import IdempotencyStore, create_engine_for
from runtime.store.db import migrate
from runtime.store.executor import StoreExecutor
from runtime.store.idempotency import Claim, fingerprint
from runtime.store.jobrunner import JobRunner
from runtime.store.usage import DefaultSenderUsage
from runtime.tenant_lookup import Lookup, async_lookup
from runtime.tenants import TenantConfig, TenantDirectory, TomlTenantDirectory
from runtime.wording import count

__all__ = ["Pipeline", "request_fingerprint"]

log = logging.getLogger("runtime.delivery")
T = TypeVar("T")


_TRANSIENT = frozenset({"store_unavailable", "shutting_down", "limits_unavailable"})
REFUND_PAUSES = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds between tries of a default-sender refund the database did not take (about 9
minutes in all, then a last try when the pipeline closes)."""
"""Rejections that sent nothing for a passing reason: their key is freed, not completed."""


def _ended_by_the_store(done: DeliveryReport) -> bool:
    """A failed delivery that sent nothing and whose last attempt met a database that did not
    answer (the default sender's count, the outbox's row): as passing as a claim that failed."""
    return (
        done.status == "failed"
        and bool(done.attempts)
        and done.attempts[-1].error_code == "store_unavailable"
        and not any(attempt.handed_off for attempt in done.attempts)
    )


@dataclass
class _Progress:
    """How far one delivery got: once ``sending`` is set, a cancelled caller no longer stops it."""

    sending: bool = False  # also set once the report exists: its accounting always finishes
    delivery: DeliveryContext | None = None  # made when an attempt wrapper asks for it
    # What the caller awaits: resolved with ``report`` set, by the wake that tells the report
    # is final: its event written (keyless), its record stored (keyed; a record that failed
    # changes the report first), else when the delivery task ends.
    # A plain future, so cancelling the caller cancels it and not the delivery task.
    done: asyncio.Future[None] | None = None
    report: DeliveryReport | None = None
    # the caller's own lookup of the tenant failed just now: not waited for a second time
    tenant_unreadable: StoreUnavailableError | None = None
    claim_id: str | None = None  # the key's claim, once won


class _Reservation:
    """One default-sender reservation's outcome, shared by the store thread that makes it and
    the delivery that waits for it: whichever of the two learns last that the count was made
    and its delivery gave up on it gives the message back, so it is refunded exactly once."""

    __slots__ = ("_abandoned", "_lock", "_reserved", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop  # the delivery's: a refund that failed on the thread is owed there
        self._lock = threading.Lock()
        self._reserved: bool | None = None  # set by the store thread
        self._abandoned = False  # set by the delivery

    def settle(self, reserved: bool) -> bool:
        """The store thread's answer: True when the delivery gave up already and the count
        was made (the thread refunds it)."""
        with self._lock:
            self._reserved = reserved
            return reserved and self._abandoned

    def abandon(self) -> bool:
        """The delivery gives up: True when the count was made already (the delivery refunds
        it; otherwise the store thread will, if it counts)."""
        with self._lock:
            self._abandoned = True
            return bool(self._reserved)


@dataclass(frozen=True)
class _Route:
    """Which provider an attempt uses, with which inputs, and whether it is the default sender
    (whose per-tenant lifetime cap the pipeline enforces)."""

    provider: Provider
    config: BaseModel
    credentials: BaseModel
    secrets: list[str]
    is_default: bool


class Pipeline:
    """Delivers :class:`PhoneMessageRequest` objects. Build one with :meth:`from_settings`."""

    def __init__(
        self,
        *,
        settings: Settings,
        tenants: TenantDirectory,
        plugin_manager: PhonePluginManager,
        providers: ProviderRegistry,
        default_sender: DefaultSender | None = None,
        log_sink: JsonLinesLogSink | None = None,
    ) -> None:
        self.settings = settings
        self.tenants = tenants
        self.plugin_manager = plugin_manager
        self.providers = providers
        self.default_sender = default_sender or DefaultSender.from_settings(providers, settings)
        self._log_sink = log_sink
        self._inputs: dict[tuple[str, str], tuple[dict[str, str], Any, Any, Any]] = {}
        self._executor = StoreExecutor(max_workers=_store_workers(settings))
        self._engine: Any = None
        self._idempotency: IdempotencyStore | None = None
        self._completers: dict[IdempotencyStore, Callable[[list[Any]], list[Any]]] = {}
        self._usage: DefaultSenderUsage | None = None
        # one opening at a time: per event loop (a pipeline may serve several loops, one after
        # another, as repeated asyncio.run calls do), and across them in _open_store
        self._opening: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._open_lock = threading.Lock()
        self._inflight: set[asyncio.Task[None]] = set()
        # default-sender allowance to give back that the database did not take yet, by tenant
        self._owed: Counter[str] = Counter()
        self._refunder: asyncio.Task[None] | None = None
        self._refund_wake: asyncio.Future[None] | None = None
        self._closing = False
        self._closed = False
        # durable background work (retries.py, runtime/store/jobrunner.py)
        self._retries = NotificationRetries(self)
        self.jobs = JobRunner(
            partial(opened_engine, self), self._executor, settings, lease=2 * self.delivery_budget
        )
        self.jobs.register(RETRY_KIND, self._retries.run)
        # the stored log (GET /api/v2/logs) and log streams follow the file (runtime/logs)
        self.stored_log = (
            None
            if log_sink is None
            else StoredLog(
                log_sink.path, partial(opened_engine, self), self._executor, settings, self.jobs
            )
        )
        self.policy = PhonePolicy.from_settings(settings)  # rate limits, country, number type
        # idempotency records older than the retention are deleted in the background
        self.key_retention = KeyRetention(
            self._idempotency_store,
            self._executor,
            retention_days=settings.idempotency_retention_days,
            timeout=self._store_timeout,
        )
        # records a delivery could not store or release when it ended (owed_records.py)
        self.owed = OwedRecords(
            self._idempotency_store, self._executor, timeout=self._store_timeout
        )
        # claims a crash left pending get their report and log event (stale_claims.py)
        self.stale_claims = StaleClaims(
            self._idempotency_store,
            self._executor,
            self._account,
            stale_after=self.delivery_budget + settings.idempotency_grace,
            timeout=self._store_timeout,
            owed=self.owed.owes,
        )

    @property
    def tenants(self) -> TenantDirectory:
        """Where tenants are found; setting it (the API's trial wrapper does) checks once
        whether the directory has an async lookup (:func:`runtime.tenant_lookup.async_lookup`)."""
        return self._tenants

    @tenants.setter
    def tenants(self, directory: TenantDirectory) -> None:
        self._tenants = directory
        self._lookup: Lookup = async_lookup(directory)

    async def tenant(self, tenant_id: str) -> TenantConfig:
        """The tenant's config: a held one without leaving the loop, a database tenant not
        held yet loaded on the store executor. UnknownTenantError, ConfigurationError (its
        config cannot be used) or StoreUnavailableError (not readable now) otherwise."""
        return await self._lookup(tenant_id)

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        tenants: TenantDirectory | None = None,
        plugins: Iterable[object] = (),
        load_entrypoints: bool = True,
    ) -> Pipeline:
        """Wire a pipeline: plugins, providers, the default sender and the JSON Lines log."""
        settings = settings or Settings()
        if tenants is None:
            tenants = TomlTenantDirectory.from_file(settings.tenants_file)
        pm = get_plugin_manager(
            settings=settings, plugins=plugins, load_entrypoints=load_entrypoints
        )
        providers = collect_providers(pm, settings)
        default_sender = DefaultSender.from_settings(providers, settings)
        sink = JsonLinesLogSink(settings.resolved_log_file)
        return cls(
            settings=settings,
            tenants=tenants,
            plugin_manager=pm,
            providers=providers,
            default_sender=default_sender,
            log_sink=sink,
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def closing(self) -> bool:
        """True once a shutdown began: new requests are refused, in-flight ones finish."""
        return self._closing

    def handle_signals(self, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
        """On SIGTERM or SIGINT, stop taking requests and let in-flight deliveries finish.

        Call from inside the running loop; :meth:`drain` (or leaving ``async with``) then
        waits for the deliveries, and closing the pipeline flushes the log.
        """
        loop = asyncio.get_running_loop()
        for signum in signals:
            loop.add_signal_handler(signum, self.begin_shutdown)

    def begin_shutdown(self) -> None:
        if not self._closing:
            log.info("shutting down: %d deliveries in flight will finish", len(self._inflight))
        self._closing = True

    async def drain(self) -> None:
        """Wait until every delivery started so far (including abandoned ones) has finished.
        Deliveries of an event loop closed since (a pipeline outliving an ``asyncio.run``)
        never will: they are forgotten, their log events handed over when they were stopped."""
        loop = asyncio.get_running_loop()
        while self._inflight:
            gone = {task for task in self._inflight if task.get_loop().is_closed()}
            self._inflight -= gone
            here = {task for task in self._inflight if task.get_loop() is loop}
            if not here:
                return
            await asyncio.wait(here)

    @property
    def log_sink(self) -> JsonLinesLogSink | None:
        """The sink the reports' events go to; other events (the Verify API's) join them."""
        return self._log_sink

    def flush_logs(self) -> None:
        """Block until every log event of the reports returned so far is written."""
        if self._log_sink is not None:
            self._log_sink.flush()

    async def start_background(self) -> None:
        """Start the background job runner (queued retries, also those left by an earlier
        process) in the running loop; the first retry queued starts it too. Opens the queue
        first, so a bad master key fails here. Idempotent; :meth:`aclose` stops it."""
        if not self._closing:
            await self.jobs.queue()
            self.jobs.start()
            if self.stored_log is not None:
                self.stored_log.start()
            self.key_retention.start()
            self.stale_claims.start()

    async def aclose(self) -> None:
        """Finish in-flight deliveries, then release providers, the store and the log."""
        if self._closed:
            return
        self._closing = True
        await self.jobs.aclose()  # stops claiming; the jobs running here finish
        await self.key_retention.aclose()
        await self.stale_claims.aclose()
        await self.drain()
        await self.stale_claims.aclose()  # its settles under way, after the deliveries
        await self.owed.aclose()
        await self._last_refunds()
        if self.stored_log is not None:  # the last reports' events into the database
            await self.stored_log.aclose()
        self._closed = True
        await self.providers.aclose()
        await self.policy.aclose()
        # calls nobody waits for (a torn-down delivery's record) run before the store closes
        await asyncio.to_thread(self._executor.wait_idle, self._store_timeout)
        for close in (
            self._idempotency.close if self._idempotency is not None else None,
            self._usage.close if self._usage is not None else None,
            self._engine.dispose if self._engine is not None else None,
        ):
            if close is not None:
                try:
                    await self._executor.run(close, timeout=self._store_timeout)
                except StoreUnavailableError as exc:  # a database that hangs: do not wait on
                    log.warning("closing the store: %s", exc)
        self._executor.shutdown(wait=False)  # a thread stuck in a dead connection ends alone
        if self._log_sink is not None:
            await self._log_sink.aclose()

    # -- the store --------------------------------------------------------------------------

    @property
    def _store_timeout(self) -> float:
        return self.settings.store_timeout

    @property
    def idempotency(self) -> IdempotencyStore:
        """The idempotency store (opened on first use; blocking: for tools and tests)."""
        self._open_store()
        assert self._idempotency is not None
        return self._idempotency

    def _open_store(self) -> None:
        with self._open_lock:
            if self._engine is None:
                engine = create_engine_for(
                    self.settings.resolved_database_url, timeout=self._store_timeout
                )
                migrate(engine)
                self._idempotency = IdempotencyStore(engine)
                self._usage = DefaultSenderUsage(engine)
                self._engine = engine

    async def open_store(self) -> None:
        """Open (and migrate) the database now, so that a bad URL or an unreachable server
        shows at start rather than on the first request with a key."""
        await self._stores()

    async def _stores(self) -> tuple[IdempotencyStore, DefaultSenderUsage]:
        """The stores, opened (and migrated) on the store executor the first time."""
        if self._engine is None:
            loop = asyncio.get_running_loop()
            opening = self._opening.get(loop)
            if opening is None:
                opening = self._opening[loop] = asyncio.Lock()
            async with opening:
                if self._engine is None:
                    # migrations may wait for another process's lock: a longer bound
                    await self._executor.run(self._open_store, timeout=self._store_timeout * 10)
        assert self._idempotency is not None
        assert self._usage is not None
        return self._idempotency, self._usage

    async def _idempotency_store(self) -> IdempotencyStore:
        idempotency, _ = await self._stores()
        return idempotency

    async def _store(self, call: Callable[..., T], *args: Any) -> T:
        return await self._executor.run(call, *args, timeout=self._store_timeout)

    def _submit(
        self, call: Callable[..., T], *args: Any, late: Callable[[T], None] | None = None
    ) -> asyncio.Future[T]:
        """:meth:`_store` queued now, as a future (no task); a refusal (full, closed) is
        that future's StoreUnavailableError, like a timeout's. ``late`` gets a value that
        came after the deadline or the caller's cancellation."""
        try:
            return self._executor.submit(call, *args, timeout=self._store_timeout, late=late)
        except StoreUnavailableError as exc:
            refused: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            refused.set_exception(exc)
            return refused

    def _batched(
        self,
        call: Callable[[list[Any]], list[Any]],
        item: Any,
        *,
        late: Callable[[Any], None] | None = None,
        also: asyncio.Future[None] | None = None,
    ) -> asyncio.Future[Any]:
        """:meth:`_submit` for a call that runs together with others of its kind queued
        meanwhile (one transaction, one commit: keys at 50 in flight); ``late`` gets an
        outcome that came after the call's deadline or its caller's cancellation; ``also`` is
        resolved with a successful outcome, by the same wake."""
        try:
            return self._executor.submit_batched(
                call, item, timeout=self._store_timeout, late=late, also=also
            )
        except StoreUnavailableError as exc:
            refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            refused.set_exception(exc)
            return refused

    @property
    def delivery_budget(self) -> float:
        """The longest a delivery can take: two attempts and the store calls around them."""
        attempt = max(self.settings.attempt_timeout, self.settings.sandbox_timeout) + GRACE
        return 2 * attempt + 4 * self._store_timeout

    # -- the path of one message ----------------------------------------------------------

    async def deliver(
        self,
        request: PhoneMessageRequest,
        *,
        tenant_unreadable: StoreUnavailableError | None = None,
    ) -> DeliveryReport:
        """Deliver ``request`` once; with an idempotency key, at most once for as long as its
        record is kept (``idempotency_retention_days``).

        Cancelling the caller before a provider attempt started stops the delivery (and frees
        its key); after that, the delivery finishes in the background and is accounted for.
        ``tenant_unreadable``: the caller looked the tenant up itself and the database did not
        answer; the delivery is refused with it (``store_unavailable``, with its report and
        log event) rather than waiting for the database a second time.
        """
        if self._closing:
            refused = rejected(
                request, "shutting_down", "the runtime is shutting down; nothing was sent"
            )
            await self._account(request, refused)
            return refused
        loop = asyncio.get_running_loop()
        progress = _Progress(done=loop.create_future(), tenant_unreadable=tenant_unreadable)
        task = loop.create_task(self._delivery_task(request, progress))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        assert progress.done is not None
        try:
            await progress.done
        except asyncio.CancelledError:
            if not progress.sending:
                task.cancel()
            raise
        assert progress.report is not None
        return progress.report

    async def _delivery_task(self, request: PhoneMessageRequest, progress: _Progress) -> None:
        """The delivery, in its own task; its outcome goes to the caller's ``progress.done``
        (a plain future rather than ``asyncio.shield``: one loop iteration, not two, between
        the delivery's end and its caller's)."""
        waiter = progress.done
        assert waiter is not None
        try:
            done = await self._deliver(request, progress)
        except asyncio.CancelledError:
            waiter.cancel()
            raise
        except Exception as exc:  # _deliver returns reports; this is a bug, the caller's now
            if not waiter.done():
                waiter.set_exception(exc)
            else:  # its caller is gone
                log_scrubbed("delivery failed unexpectedly", exc, [request.code])
            return
        progress.report = done
        if not waiter.done():
            waiter.set_result(None)

    async def _deliver(self, request: PhoneMessageRequest, progress: _Progress) -> DeliveryReport:
        key = request.idempotency_key
        if key is None:
            try:
                done = await self._deliver_safely(request, progress)
            except asyncio.CancelledError:
                self._interrupted(request, progress)
                raise
            progress.sending = True  # the report exists: a cancelled caller no longer stops it
            # the report is final: the log sink's wake resolves the caller's future too
            progress.report = done
            await self._account(request, done, progress, resolve=progress.done)
            return done
        digest = request_fingerprint(request)
        try:
            claim = await self._claim(request, key, digest)
        except StoreUnavailableError as exc:
            done = rejected(
                request,
                "store_unavailable",
                f"the idempotency key could not be claimed ({exc}); nothing was sent",
            )
            await self._account(request, done)
            return done
        if not claim.won:
            done, accounted = await self._earlier_report(request, claim, digest)
            if not accounted and not done.replayed:  # a refusal is news; a replay is not
                await self._account(request, done)
            return done
        progress.claim_id = claim.claim_id
        try:
            done = await self._deliver_safely(request, progress)
        except asyncio.CancelledError:
            if progress.sending:  # the task itself (its loop torn down), mid-send: the key
                self._interrupted(request, progress)  # stays claimed, never sent again
                raise
            # before a provider attempt (deliver() cancels no later): free the key
            try:
                idempotency, _ = await self._stores()
                await self._store(idempotency.release, request.tenant, key)
            except BaseException:  # the database, or this task cancelled again: freed later
                self.owed.release(request.tenant, key)
            raise
        # The report exists, sent or not: from here a cancelled caller no longer stops the
        # delivery, which completes (or frees) its key and writes its log event.
        progress.sending = True
        idempotency, _ = await self._stores()
        if (done.status == "rejected" and done.reason in _TRANSIENT) or _ended_by_the_store(done):
            # Nothing was sent, and only for a passing reason (the database did not answer):
            # free the key, so the caller's retry delivers instead of replaying this refusal.
            try:
                await self._store(idempotency.release, request.tenant, key)
            except StoreUnavailableError:
                self.owed.release(request.tenant, key)  # freed later: the sweep leaves it
            await self._account(request, done, progress)
            return done
        return await self._complete(request, done, progress, idempotency, key)

    def _interrupted(self, request: PhoneMessageRequest, progress: _Progress) -> None:
        """The delivery task was cancelled (its event loop torn down, not its caller: see
        :meth:`deliver`). Once a provider attempt started, the message may have gone out: its
        log event says so, handed to the log's thread without waiting (the loop is going)."""
        if not progress.sending or self._log_sink is None:
            return
        key = request.idempotency_key
        done = report(
            request,
            "failed",
            [],
            reason="outcome_unknown",
            detail="the delivery was interrupted (its event loop stopped) while a provider "
            "attempt was under way; the message may or may not have been sent",
            # a key's: the id the sweep would give it, so that two events of it are one
            delivery_id=None
            if key is None
            else claim_delivery_id(request.tenant, key, progress.claim_id),
        )
        pending = self._log_sink.pending(request, done)
        if pending is not None:
            self._log_sink.hand_over(pending)
        if key is not None and self._idempotency is not None:  # the same answer on the record,
            self._executor.fire(  # so the sweep of stale claims does not log it again
                self._idempotency.settle,
                request.tenant,
                key,
                progress.claim_id,
                done.model_dump_json(),
            )

    async def _complete(
        self,
        request: PhoneMessageRequest,
        done: DeliveryReport,
        progress: _Progress,
        idempotency: IdempotencyStore,
        key: str,
    ) -> DeliveryReport:
        """Store the key's record and write the log event, in one thread hop: the store thread
        writes the lines first, then the record. When that call did not run (refused, timed out
        while queued), the lines go through the log's own thread instead; either way they are
        handed to the OS before the report returns. Observers and the log see the delivery as
        it went; a record that could not be stored changes only the report returned."""
        sink = self._log_sink
        pending = sink.pending(request, done) if sink is not None else None
        # stored and written: the report is final, and the caller resumes with the same wake
        progress.report = done
        stored = done.model_dump_json()
        completing = self._batched(
            self._completer(idempotency),
            (request.tenant, key, stored, pending),
            also=progress.done,
        )
        self._observe(request, done, progress)
        try:
            await completing
        except asyncio.CancelledError:  # the task itself (a loop torn down): lines not lost
            if sink is not None and pending is not None:
                sink.hand_over(pending)
            raise
        except StoreUnavailableError as exc:
            log.error("delivery %s: its idempotency record was not stored: %s", done.id, exc)
            self.owed.complete(request.tenant, key, progress.claim_id, stored)  # stored later
            done = after_store_failure(done, str(exc))
            if sink is not None and pending is not None:
                await sink.write_pending(pending)  # written by now, or written here
        if self.stored_log is not None and pending is not None:
            self.stored_log.wake()
        return done

    def _completer(self, idempotency: IdempotencyStore) -> Callable[[list[Any]], list[Any]]:
        """``idempotency.complete_many`` writing the batch's log lines first (one write): one
        function per store, so that completions queued together run as one batch."""
        made = self._completers.get(idempotency)
        if made is None:
            sink = self._log_sink
            before = sink.write_here if sink is not None else None
            made = self._completers[idempotency] = partial(idempotency.complete_many, before=before)
        return made

    def _late_claim(self, tenant: str, key: str, outcome: object) -> None:
        """A claim won after its caller was told it timed out (nothing was sent): give the key
        back, so the caller's retry delivers rather than finding it held forever."""
        if isinstance(outcome, Claim) and outcome.won:
            self.owed.release(tenant, key)  # tried again until the database takes it

    async def _claim(self, request: PhoneMessageRequest, key: str, digest: str) -> Claim:
        """Claim ``key``, saying where the delivery goes (a claim a crash leaves pending is
        logged by the sweep: stale_claims.py); a cancelled caller still learns the outcome,
        so a won claim whose delivery never starts is released rather than left pending."""
        idempotency, _ = await self._stores()
        tenant = request.tenant
        # a future, not a task: queued at once (the shield keeps it running for the outcome)
        call = self._batched(
            idempotency.claim_many,
            (tenant, key, digest, request.recipient, request.channel, request.purpose),
            late=partial(self._late_claim, tenant, key),
        )
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                if (await call).won:
                    await self._store(idempotency.release, tenant, key)
            raise

    async def _account(
        self,
        request: PhoneMessageRequest,
        done: DeliveryReport,
        progress: _Progress | None = None,
        *,
        resolve: asyncio.Future[None] | None = None,
        since: int = 0,
    ) -> None:
        """The observers (:meth:`_observe`), then the log event, handed to the OS before the
        report returns. ``resolve`` is resolved by the same wake as the write (see
        :meth:`JsonLinesLogSink.write`); ``since`` attempts of the report were logged already."""
        self._observe(request, done, progress)
        if self._log_sink is not None:
            await self._log_sink.write(request, done, also=resolve, since=since)
            if self.stored_log is not None:  # the database copy follows, not awaited here
                self.stored_log.wake()

    def _observe(
        self, request: PhoneMessageRequest, done: DeliveryReport, progress: _Progress | None
    ) -> None:
        """The observers: ``after_send``, then the attempt wrappers' ``on_report``."""
        self._notify(request, done)
        if progress is not None and progress.delivery is not None:
            progress.delivery.finish(done, request.code)

    async def _deliver_safely(
        self, request: PhoneMessageRequest, progress: _Progress
    ) -> DeliveryReport:
        """:meth:`_route_and_send`, with a bug anywhere in it turned into a failed report.

        Nothing is known about what was sent when that happens, so the report says so; the
        idempotency key is still completed, so a retry never sends again.
        """
        try:
            return await self._route_and_send(request, progress)
        except Exception as exc:
            log_scrubbed("delivery failed unexpectedly", exc, [request.code])
            return report(
                request,
                "failed",
                [],
                reason="internal_error",
                detail=f"internal error ({type(exc).__name__}); the message may or may not "
                "have been sent",
            )

    async def _earlier_report(
        self, request: PhoneMessageRequest, claim: Claim, digest: str
    ) -> tuple[DeliveryReport, bool]:
        """The answer for a key another request holds: its report, or why there is none; and
        whether that answer was accounted for already (a stale claim this request settled)."""
        key = request.idempotency_key or ""
        if claim.fingerprint != digest:
            return rejected(
                request,
                "idempotency_key_reused",
                f"idempotency key {key!r} was used for a different message",
            ), False
        deadline = time.monotonic() + self.settings.idempotency_wait
        stale_after = self.delivery_budget + self.settings.idempotency_grace
        pause = 0.01
        latest: Claim | None = claim
        while True:
            owed = self.owed.report(request.tenant, key)  # ended here; its record on its way
            if owed is not None:
                return DeliveryReport.model_validate_json(owed).model_copy(
                    update={"replayed": True}
                ), False
            if latest is not None and latest.report is not None:
                earlier = DeliveryReport.model_validate_json(latest.report)
                return earlier.model_copy(update={"replayed": True}), False
            if latest is not None and _age(latest) > stale_after:
                return await self._settle_stale(request, latest)
            if time.monotonic() >= deadline:
                return rejected(
                    request,
                    "idempotency_in_progress",
                    f"a request with idempotency key {key!r} is still in progress; "
                    "it is never sent twice",
                ), False
            await asyncio.sleep(pause)  # polling the shared database, which may be another node
            pause = min(pause * 2, 0.25)
            try:
                idempotency, _ = await self._stores()
                latest = await self._store(idempotency.get, request.tenant, key)
            except StoreUnavailableError as exc:
                return rejected(
                    request,
                    "store_unavailable",
                    f"the report of an earlier request with key {key!r} could not be read "
                    f"({exc}); nothing was sent by this request",
                ), False

    async def _settle_stale(
        self, request: PhoneMessageRequest, claim: Claim
    ) -> tuple[DeliveryReport, bool]:
        """A claim a crash left pending, found by a retry: ``outcome_unknown``, stored on the
        record and logged by this request unless the sweep (or another retry) did first."""
        key = request.idempotency_key or ""
        try:
            settled = await self.stale_claims.settle(request, claim)
        except StoreUnavailableError as exc:
            return rejected(
                request,
                "store_unavailable",
                f"an earlier request with idempotency key {key!r} was interrupted, and its "
                f"outcome could not be recorded ({exc}); nothing was sent by this request",
            ), False
        if settled is None:  # gone meanwhile (purged): the answer stands, logged here
            return interrupted_report(request, claim.claim_id), False
        return settled, not settled.replayed

    async def _route_and_send(
        self, request: PhoneMessageRequest, progress: _Progress
    ) -> DeliveryReport:
        try:
            if progress.tenant_unreadable is not None:
                raise progress.tenant_unreadable
            tenant = await self.tenant(request.tenant)
        except UnknownTenantError as exc:
            return rejected(request, "unknown_tenant", str(exc))
        except ConfigurationError as exc:  # this tenant's config only: others are served
            return rejected(request, "tenant_unusable", str(exc))
        except StoreUnavailableError as exc:
            detail = f"the tenant could not be loaded ({exc}); nothing was sent"
            return rejected(request, "store_unavailable", detail)
        if request.channel not in tenant.message_types:
            enabled = ", ".join(sorted(tenant.message_types)) or "none"
            return rejected(
                request,
                "message_type_disabled",
                f"message type {request.channel!r} is not enabled for tenant {tenant.id!r} "
                f"(enabled: {enabled})",
            )
        refused = await self.policy.check(request, tenant.phone_limits)  # runtime/policy
        if refused is not None:
            return refused
        try:
            message = self._render(request, tenant)
        except ConfigurationError as exc:
            return rejected(request, "template_error", f"tenant {tenant.id!r}: {exc}")
        try:
            hook = self.plugin_manager.hook.before_send
            veto = hook(message=message) if hook.get_hookimpls() else None
        except Exception as exc:
            log.error("a before_send plugin raised %s", type(exc).__name__)
            return report(
                request,
                "failed",
                [],
                reason="plugin_error",
                detail=f"a before_send plugin raised {type(exc).__name__}; nothing was sent",
            )
        if veto is not None:
            return rejected(request, "vetoed", str(veto))

        first, primary_is_default = await self._attempt(
            tenant.provider, message, tenant, progress, fallback=False
        )
        attempts = [first]
        if first.outcome == "delivered":
            return self._success(request, attempts, message)
        if self._retries.asked(first):  # api.notification.retry: re-run later (retries.py)
            retrying = await self._retries.schedule(request, message, attempts)
            if retrying is not None:
                return retrying
        dropped = self._retries.dropped(request, message, attempts)
        if dropped is not None:
            return dropped
        return await self._after_primary(
            request, message, tenant, progress, attempts, primary_is_default
        )

    async def _after_primary(
        self,
        request: PhoneMessageRequest,
        message: PhoneMessage,
        tenant: TenantConfig,
        progress: _Progress,
        attempts: list[Attempt],
        primary_is_default: bool,
    ) -> DeliveryReport:
        """The fallback rules for the failed primary attempt ``attempts[-1]`` (the first, or
        the last retry an action asked for)."""
        first = attempts[-1]
        reason, detail = self._fallback_refusal(first, tenant, message, primary_is_default)
        if reason is not None:
            return report(
                request, "failed", attempts, reason=reason, detail=detail, delivery_id=message.id
            )
        second, _ = await self._attempt(DEFAULT, message, tenant, progress, fallback=True)
        attempts.append(second)
        if second.outcome == "delivered":
            return self._success(request, attempts, message)
        return report(
            request,
            "failed",
            attempts,
            reason="fallback_failed",
            detail=f"{first.provider}: {first.error}; then {second.provider}: {second.error}",
            delivery_id=message.id,
        )

    def _success(
        self, request: PhoneMessageRequest, attempts: list[Attempt], message: PhoneMessage
    ) -> DeliveryReport:
        """Delivered, or ``stored`` when the sender that accepted it reaches no phone."""
        last = attempts[-1]
        if reaches_phones(self.providers.get(last.provider)):
            return report(
                request, "delivered", attempts, delivered_by=last.provider, delivery_id=message.id
            )
        return report(
            request,
            "stored",
            attempts,
            delivered_by=last.provider,
            reason="not_sent_to_a_phone",
            detail=f"{last.provider} stored the message; it was not sent to a phone "
            "(configure a provider, or a default sender that reaches phones)",
            delivery_id=message.id,
        )

    def _fallback_refusal(
        self,
        failed: Attempt,
        tenant: TenantConfig,
        message: PhoneMessage,
        primary_is_default: bool,
    ) -> tuple[str | None, str | None]:
        """Why the failed primary attempt must not fall back, or ``(None, None)`` if it may."""
        default = self.default_sender
        failure = f"{failed.provider} failed: [{failed.error_code}] {failed.error}"
        if failed.handed_off:
            return (
                "handed_off",
                f"{failure}; the message may have reached the carrier, so "
                "no fallback (the user must never receive two codes)",
            )
        if tenant.fallback == "never" or primary_is_default:
            return "provider_failed", failure
        if failed.provider == default.name:  # the tenant's provider is the default sender's
            return (
                "provider_failed",
                f"{failure}; {default.name!r} is the default sender itself: no fallback",
            )
        if tenant.fallback == "retryable" and not failed.retryable:
            return (
                "provider_failed",
                f"{failure}; permanent error, and tenant "
                f"{tenant.id!r} falls back only on retryable errors",
            )
        if message.channel not in default.provider.channels:
            return (
                "fallback_unavailable",
                f"{failure}; the default sender {default.name!r} does not support "
                f"{message.channel}",
            )
        return None, None

    def _render(self, request: PhoneMessageRequest, tenant: TenantConfig) -> PhoneMessage:
        text = request.text
        if text is None:  # render only what this channel delivers
            overrides = tenant.voice_templates if request.channel == "voice" else tenant.templates
            text = templates.render(
                overrides.get(request.purpose),
                channel=request.channel,
                purpose=request.purpose,
                code=request.code,
                locale=request.locale,
                tenant_id=tenant.id,
                tenant_name=tenant.display_name,
            )
        return PhoneMessage(
            id=new_id(),
            tenant=tenant.id,
            recipient=request.recipient,
            channel=request.channel,
            purpose=request.purpose,
            locale=request.locale,
            code=request.code,
            text=text,
            timeout=self.settings.attempt_timeout,
            user=request.user,
            client=request.client,
            request=request.request,
        )

    async def _attempt(
        self,
        name: str,
        message: PhoneMessage,
        tenant: TenantConfig,
        progress: _Progress,
        *,
        fallback: bool,
    ) -> tuple[Attempt, bool]:
        """One try at one provider (``default``: the default sender), and whether it was the
        default sender. Whatever happens, an :class:`Attempt` comes back."""
        started = time.perf_counter()
        secrets = [message.code]
        is_default = name == DEFAULT
        try:
            route = self._route(name, message, tenant, secrets)
        except Exception as exc:  # nothing was sent: configuration
            shown = self.default_sender.name if is_default else name
            error = _before_send(exc)
            return failed_attempt(shown, error, fallback, secrets, started), is_default
        name = route.provider.name
        if route.is_default:
            refusal = await self._reserve_default(tenant.id)
            if refusal is not None:
                return failed_attempt(name, refusal, fallback, secrets, started), True
        progress.sending = True
        attempt, _ = await run_attempt(
            route.provider,
            message,
            lambda: self._send(route, message, tenant, progress, fallback),
            fallback=fallback,
            secrets=secrets,
            started=started,
        )
        if route.is_default and attempt.outcome == "failed" and not attempt.handed_off:
            await self._refund_default(tenant.id)
        return attempt, route.is_default

    def _route(
        self, name: str, message: PhoneMessage, tenant: TenantConfig, secrets: list[str]
    ) -> _Route:
        """The provider and inputs for ``name``: the tenant's own, or the platform's for the
        default sender (which serves a tenant without a provider of its own, and fallbacks)."""
        if name == DEFAULT:
            default = self.default_sender
            secrets.extend(default.secrets)
            provider = default.provider
            route = _Route(provider, default.config, default.credentials, secrets, True)
        else:
            provider = self.providers.get(name)
            config, credentials = self._provider_inputs(provider, tenant, secrets)
            route = _Route(provider, config, credentials, secrets, False)
        if message.channel not in provider.channels:
            raise ProviderError(
                "channel_not_supported",
                f"{provider.name} does not support {message.channel}",
                retryable=False,
                handed_off=False,
            )
        return route

    async def _reserve_default(self, tenant: str) -> ProviderError | None:
        """Take one message of the tenant's lifetime allowance at the default sender. A
        reservation that counts after its caller gave up on it (its deadline, or its task
        cancelled as its event loop is torn down) is given back: nothing was sent for it."""
        cap = self.default_sender.cap
        outcome = _Reservation(asyncio.get_running_loop())
        try:
            _, usage = await self._stores()
            reserving = self._submit(self._reserve_here, usage, tenant, cap, outcome)
            try:
                reserved = await reserving
            except asyncio.CancelledError:  # the loop is being torn down (see deliver())
                if outcome.abandon():  # counted, and the answer was on its way: give it back
                    self._refund_detached(usage, tenant)
                raise
            except StoreUnavailableError:
                if outcome.abandon():
                    self._refund_later(tenant)
                raise
            if reserved:
                return None
        except StoreUnavailableError as exc:
            return ProviderError(
                "store_unavailable",
                f"the default sender's usage could not be counted ({exc}); nothing was sent",
                retryable=True,
                handed_off=False,
            )
        return ProviderError(
            "default_sender_cap_reached",
            f"the default sender has reached its lifetime cap of {count(cap, 'message')} for "
            f"tenant {tenant!r}; configure a provider for it",
            retryable=False,
            handed_off=False,
        )

    def _reserve_here(
        self, usage: DefaultSenderUsage, tenant: str, cap: int, outcome: _Reservation
    ) -> bool:
        """On a store thread: ``usage.reserve``; a count its delivery no longer waits for is
        refunded here at once, without the event loop (which may be closed by now). A refund
        the database did not take is owed on the loop, while the loop lives."""
        reserved = usage.reserve(tenant, cap)
        if outcome.settle(reserved):
            try:
                usage.refund(tenant)
            except StoreUnavailableError as exc:
                try:
                    outcome.loop.call_soon_threadsafe(self._refund_later, tenant)
                except RuntimeError:  # the loop is closed: nobody can try again
                    log.error(
                        "default sender usage of %r not refunded (its delivery was abandoned "
                        "and the database did not answer); it stays counted: %s",
                        tenant,
                        exc,
                    )
        return reserved

    def _refund_detached(self, usage: DefaultSenderUsage, tenant: str) -> None:
        """Queue a refund on a store thread without waiting for it: the loop may close before
        it answers, and the thread runs it all the same. While the loop lives, a refund that
        never ran is owed (:meth:`_refund_later`)."""
        try:
            refunding = self._executor.submit(usage.refund, tenant, timeout=3 * self._store_timeout)
        except StoreUnavailableError as exc:
            log.error("default sender usage of %r not refunded: %s", tenant, exc)
            return

        def owed_if_not_run(done: asyncio.Future[None]) -> None:
            if done.cancelled():
                return
            failed = done.exception()
            if isinstance(failed, StoreUnavailableError) and not failed.running:
                self._refund_later(tenant)

        refunding.add_done_callback(owed_if_not_run)

    async def _refund_default(self, tenant: str) -> None:
        """The default sender did not take the message: give the allowance back (later, in
        the background, if the database does not take the refund now)."""
        try:
            _, usage = await self._stores()
            await self._refund(usage, tenant)
        except StoreUnavailableError as exc:
            if exc.running:  # it may still take effect: never a second refund (the cap holds)
                log.warning("default sender usage of %r may not be refunded: %s", tenant, exc)
                return
            log.warning(
                "default sender usage of %r not refunded yet (%s): trying again", tenant, exc
            )
            self._refund_later(tenant)

    async def _refund(self, usage: DefaultSenderUsage, tenant: str) -> None:
        """``usage.refund`` with three times the store timeout: the database's own timeouts
        (the wait for SQLite's connection, then its lock; a statement's) end it first, so a
        refund that failed is known to have failed (and is owed again). One still running at
        its deadline is not owed again: it may yet refund, and must never refund twice."""
        await self._executor.run(usage.refund, tenant, timeout=3 * self._store_timeout)

    def _refund_later(self, tenant: str) -> None:
        """Owe ``tenant`` one message of allowance: given back in the background, tried again
        while the database does not take it (:data:`REFUND_PAUSES`), and once more at close."""
        self._owed[tenant] += 1
        refunder = self._refunder
        if refunder is None or refunder.done() or refunder.get_loop().is_closed():
            self._refunder = asyncio.get_running_loop().create_task(self._refund_owed())

    async def _refund_owed(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for pause in (0.0, *REFUND_PAUSES):
                if pause and not self._closing:  # closing wakes it (never cancels a refund)
                    wake = self._refund_wake = loop.create_future()
                    await asyncio.wait([wake], timeout=pause)
                if await self._refund_pass() or self._closing:
                    return
        except Exception as exc:  # the store could not even open: said, not lost in a task
            log.error("default sender refunds stopped: %s (%s)", type(exc).__name__, exc)
            return
        log.error("default sender allowance still owed after retries: %s", dict(self._owed))

    async def _refund_pass(self) -> bool:
        """One try for each message owed: True once nothing is owed."""
        while self._owed:
            tenant = next(iter(self._owed))
            # no longer owed before the call: one cancelled mid-call (its loop torn down), or
            # still running at its deadline, may refund yet, and must never refund twice
            self._owed[tenant] -= 1
            if self._owed[tenant] <= 0:
                del self._owed[tenant]
            try:
                _, usage = await self._stores()
                await self._refund(usage, tenant)
            except StoreUnavailableError as exc:
                log.warning("default sender usage of %r not refunded yet: %s", tenant, exc)
                if not exc.running:  # it did not run: owed still
                    self._owed[tenant] += 1
                return False
        return True

    async def _last_refunds(self) -> None:
        """At close: the refunder tries once more now and stops; what is still owed then is
        tried once more here (a refunder of a closed loop never will)."""
        refunder, self._refunder = self._refunder, None
        here = asyncio.get_running_loop()
        if refunder is not None and not refunder.done() and refunder.get_loop() is here:
            wake = self._refund_wake
            if wake is not None and not wake.done():
                wake.set_result(None)
            await refunder
        if self._owed and not await self._refund_pass():
            log.error(
                "default sender allowance not refunded (the database did not answer); these "
                "messages stay counted against the cap: %s",
                dict(self._owed),
            )

    def _send(
        self,
        route: _Route,
        message: PhoneMessage,
        tenant: TenantConfig,
        progress: _Progress,
        fallback: bool,
    ) -> Awaitable[Receipt]:
        """The provider's send, inside the ``around_attempt`` wrappers (docs/hooks.md)."""
        wrappers = applicable(self.plugin_manager.hook.around_attempt.get_hookimpls(), tenant)
        if not wrappers:  # e.g. only the recorder, and this tenant does not record
            return route.provider.send(message, route.config, route.credentials)
        attempt = AttemptContext(
            route.provider,
            message,
            tenant,
            fallback=fallback,
            is_default=route.is_default,
            settings=self.settings,
            holder=progress,
            credentials=self.tenants.credentials,
        )
        return run_wrapped(wrappers, attempt, partial(_observed_send, route))

    def _provider_inputs(
        self, provider: Provider, tenant: TenantConfig, secrets: list[str]
    ) -> tuple[BaseModel, BaseModel]:
        """The provider's validated settings and credentials for this tenant.

        Credentials are read from their source on every attempt (a rotated secret takes
        effect at once) but validated again only when they changed, or when the directory
        gave a new configuration (a deploy: another ``provider_settings`` object).
        """
        raw_credentials = self.tenants.credentials(tenant)
        secrets.extend(raw_credentials.values())
        cache_key = (tenant.id, provider.name)
        cached = self._inputs.get(cache_key)
        if (
            cached is not None
            and cached[3] is tenant.provider_settings  # the same configuration object
            and cached[0] == raw_credentials  # dict equality: same values
        ):
            return cached[1], cached[2]
        try:
            config = provider.config_model.model_validate(tenant.provider_settings)
            credentials = provider.credentials_model.model_validate(raw_credentials)
        except ValidationError as exc:
            # from None: pydantic's own message would show the input, i.e. the credentials
            raise validation_problem(provider.name, tenant.id, exc) from None
        self._inputs[cache_key] = (raw_credentials, config, credentials, tenant.provider_settings)
        return config, credentials

    def _notify(self, request: PhoneMessageRequest, done: DeliveryReport) -> None:
        """Call each ``after_send`` observer; one failing observer never hides the others."""
        for impl in self.plugin_manager.hook.after_send.get_hookimpls():
            try:
                if impl.argnames == ("request", "report"):
                    impl.function(request, done)
                else:
                    arguments = {"request": request, "report": done}
                    impl.function(*(arguments[a] for a in impl.argnames))
            except Exception as exc:
                log_scrubbed(f"after_send observer {impl.plugin_name} failed", exc, [request.code])


SQLITE_STORE_WORKERS = 2
"""Store threads on SQLite unless ``store_workers`` is set: its keyed calls share one
connection (one writer at a time), so more threads only wait for its lock and the GIL
(keys on SQLite at 50 in flight, bench/pipeline.py: 16 threads cost ~10% more CPU per
message than 2)."""


def _store_workers(settings: Settings) -> int:
    """``store_workers`` as set, else its default, capped on SQLite (SQLITE_STORE_WORKERS)."""
    if "store_workers" in settings.model_fields_set:
        return settings.store_workers
    if settings.resolved_database_url.startswith("sqlite"):
        return min(settings.store_workers, SQLITE_STORE_WORKERS)
    return settings.store_workers


def request_fingerprint(request: PhoneMessageRequest) -> str:
    """What makes two requests "the same message" for an idempotency key: everything that
    changes what the user receives, the locale included (it picks the template's language)."""
    return fingerprint(
        request.recipient,
        request.channel,
        request.purpose,
        request.locale,
        request.code,
        request.text or "",
    )


def _observed_send(route: _Route, attempt: AttemptContext) -> Awaitable[Receipt]:
    """``send``, given the observer a wrapper set when the provider declares it takes one."""
    provider = route.provider
    if attempt.observer is not None and accepts_observer(provider):
        send: Callable[..., Awaitable[Receipt]] = provider.send
        return send(attempt.message, route.config, route.credentials, observer=attempt.observer)
    return provider.send(attempt.message, route.config, route.credentials)


def _before_send(exc: Exception) -> ProviderError:
    """A failure found while choosing the provider: nothing was sent (a bug here is still
    treated as a possible hand-off, like any unexpected failure)."""
    return as_provider_error(exc, "?", 0, [])


def _age(claim: Claim) -> float:
    """Seconds since ``claim`` was made (0 when the store did not say)."""
    if claim.created_at is None:
        return 0.0
    created = claim.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return (datetime.now(UTC) - created).total_seconds()
