"""The store's own threads: blocking database calls run here, never on the event loop.

Not asyncio's default pool: tenant-driven work uses that one, and a slow database must not
take its threads (nor tenant work take the store's). Both the threads and the calls waiting
for them are bounded, and every call has a deadline, so a database that hangs costs the
caller ``timeout`` seconds and a clear error, never an unbounded queue.

Calls of one kind that arrive while another of them runs may be run together
(:meth:`StoreExecutor.submit_batched`): one transaction, one commit and one wake of the loop
for all of them. The pipeline's idempotency claims and completions do, at 50 in flight.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from runtime.errors import StoreUnavailableError
from runtime.loop_inbox import LoopInbox, inbox_for

__all__ = ["BATCH_LIMIT", "StoreExecutor"]

log = logging.getLogger("runtime.store")

T = TypeVar("T")
BATCH_LIMIT = 64
"""The most calls of one kind run together (one transaction holds SQLite's write lock)."""


class StoreExecutor:
    """Store calls run here: threads of its own (never asyncio's default pool, which
    tenant-driven work uses), bounded (``max_workers``, default 4) and with a bounded queue:
    when more than ``max_pending`` calls wait, :meth:`run` raises
    :class:`StoreUnavailableError` at once instead of queueing without bound.

    Lean on purpose: one C-level queue and one asyncio future per call, no
    ``concurrent.futures`` machinery (its future, condition and work item per call cost as
    much as a SQLite statement; bench/pipeline.py's keyed variants). Threads start on first
    use, up to ``max_workers``, when every started one is busy.
    """

    def __init__(self, max_workers: int = 4, max_pending: int = 1000) -> None:
        if max_workers < 1 or max_pending < 1:
            raise ValueError("max_workers and max_pending must be at least 1")
        self.max_workers = max_workers
        self.max_pending = max_pending
        self._queue: queue.SimpleQueue[_Call | _Lane | _Fire | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle_now = threading.Condition(self._lock)  # told when no call is pending
        self._threads: list[threading.Thread] = []
        self._idle = 0  # started threads waiting for work
        self._pending = 0  # submitted and not yet finished (queued or running)
        self._closed = False
        self._inbox: LoopInbox | None = None  # the calling loop's (one loop at a time)
        self._lanes: dict[Callable[..., Any], _Lane] = {}  # submit_batched's, by function

    @property
    def pending(self) -> int:
        """Calls submitted and not yet finished."""
        return self._pending

    # The deadline is part of the call on purpose: every store call must have one.
    async def run(self, fn: Callable[..., T], *args: Any, timeout: float) -> T:  # noqa: ASYNC109
        """``fn(*args)`` on a store thread; :class:`StoreUnavailableError` after ``timeout``
        seconds or when the queue is full. A call that times out while still queued never
        runs; one already running finishes in its thread (the database's own timeouts end
        it soon). A cancelled caller is treated the same way."""
        future = self.submit(fn, *args, timeout=timeout)
        try:
            return await future
        finally:
            if not future.done():
                future.cancel()  # the caller left: a queued call is skipped

    def submit(
        self,
        fn: Callable[..., T],
        *args: Any,
        timeout: float,
        late: Callable[[T], None] | None = None,
    ) -> asyncio.Future[T]:
        """:meth:`run` without a coroutine: the call is queued now and its future returned
        (a task per call would queue it one loop iteration later and cost a task). The
        future fails with :class:`StoreUnavailableError` after ``timeout`` seconds; cancelling
        it skips a call still queued. Raises StoreUnavailableError when full or closed.
        ``late`` (on the loop) gets the value of a call that was running at its deadline or
        its caller's cancellation and completed after it: what it took can be given back."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        outbox = self._inbox
        if outbox is None or outbox.loop is not loop:
            outbox = self._inbox = inbox_for(loop)
        with self._lock:
            self._admit(fn)
            self._wake_a_thread()
        # A timer that fails the future itself: cheaper than asyncio.timeout's cancellation.
        # The store thread's outcome cancels it (a cancelled call's timer just runs out).
        started = [False]  # set by the store thread, under _lock, when it takes the call
        expiry = loop.call_later(timeout, self._expire_call, future, fn, timeout, started)
        on_value = _set_result if late is None else partial(_set_result_or_late, late, None)
        self._queue.put((outbox, future, fn, args, expiry, started, on_value))
        return future

    def wait_idle(self, timeout: float) -> bool:
        """Block (never on an event loop) until no call is queued or running, at most
        ``timeout`` seconds: whether it got there. A close waits so for the calls nobody
        waits for (:meth:`fire`) before it drops what is left."""
        with self._lock:
            return self._idle_now.wait_for(lambda: not self._pending, timeout)

    def fire(self, fn: Callable[..., Any], *args: Any) -> bool:
        """``fn(*args)`` on a store thread, from any thread, nobody waiting for it: for an
        event loop being torn down, which can wait for nothing. False when refused (closed,
        full); a failure is logged, never raised."""
        with self._lock:
            try:
                self._admit(fn)
            except StoreUnavailableError:
                return False
            self._wake_a_thread()
        self._queue.put(_Fire(fn, args))
        return True

    def _expire_call(
        self,
        future: asyncio.Future[Any],
        fn: Callable[..., Any],
        timeout: float,
        started: list[bool],
    ) -> None:
        """:func:`_expire` for a plain call, saying whether it had started (it may complete)."""
        with self._lock:  # the store thread decides to run the call under it too
            _expire(future, fn, timeout, running=started[0])

    def submit_batched(
        self,
        fn: Callable[[list[Any]], list[Any]],
        item: Any,
        *,
        timeout: float,
        late: Callable[[Any], None] | None = None,
        also: asyncio.Future[None] | None = None,
    ) -> asyncio.Future[Any]:
        """:meth:`submit` for calls that may run together: ``fn(items)`` gets the items
        submitted while an earlier batch ran (at most :data:`BATCH_LIMIT`) and returns one
        outcome per item, in order: a value, or an exception for that item alone. An
        exception ``fn`` raises fails the whole batch. One thread runs ``fn``'s batches at a
        time, one batch per turn in the queue (plain calls are not starved); the deadline,
        queue bound and cancellation are :meth:`submit`'s, per item. ``late`` (on the loop)
        gets the outcome of an item whose batch ran but finished after its deadline or its
        caller's cancellation: a claim won too late can then be given back. ``also`` (a
        future of the same loop) is resolved by the same wake as the item's future when its
        outcome is a value: the pipeline's caller then resumes without another loop
        iteration."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        outbox = self._inbox
        if outbox is None or outbox.loop is not loop:
            outbox = self._inbox = inbox_for(loop)
        expiry = loop.call_later(timeout, _expire, future, fn, timeout)
        with self._lock:
            try:
                self._admit(fn)
            except StoreUnavailableError:
                expiry.cancel()
                raise
            lane = self._lanes.get(fn)
            if lane is None:
                lane = self._lanes[fn] = _Lane(fn)
            on_value = (
                _set_result
                if late is None and also is None
                else partial(_set_result_or_late, late, also)
            )
            lane.items.append((outbox, future, item, expiry, on_value))
            if lane.queued:  # a thread will take it with the batch under way or the next
                return future
            lane.queued = True
            self._wake_a_thread()
        self._queue.put(lane)
        return future

    def _admit(self, fn: Callable[..., Any]) -> None:
        """Count one more call, or refuse it (closed, full). Under ``_lock``."""
        if self._closed:
            raise StoreUnavailableError(f"{_database(fn)}: the store is closed")
        if self._pending >= self.max_pending:
            raise StoreUnavailableError(
                f"{_database(fn)}: {self._pending} store calls already waiting "
                f"(limit {self.max_pending}); refused at once"
            )
        self._pending += 1

    def _finished(self, count: int) -> None:
        """``count`` calls ran or were dropped. Under ``_lock``; :meth:`wait_idle` is told."""
        self._pending -= count
        if not self._pending:
            self._idle_now.notify_all()

    def _wake_a_thread(self) -> None:
        """One more queue entry: an idle thread takes it, or a new one starts. Under ``_lock``."""
        if self._idle == 0 and len(self._threads) < self.max_workers:
            self._start_thread()
        else:
            self._idle -= 1 if self._idle else 0

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._work,
            name=f"phone-actions-store_{len(self._threads)}",
            daemon=True,
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        """A store thread: runs calls and hands each outcome to its loop."""
        get = self._queue.get
        while True:
            call = get()
            if call is None:
                return
            if isinstance(call, _Lane):
                self._run_lane(call)
                continue
            if isinstance(call, _Fire):
                call.run()
                with self._lock:
                    self._finished(1)
                    self._idle += 1
                continue
            outbox, future, fn, args, expiry, started, setter = call
            outcome: Any = None
            with self._lock:  # against _expire_call: a call either runs or expired unstarted
                ran = started[0] = not future.done()  # timed out or cancelled while queued
            if ran:
                try:
                    outcome = fn(*args)
                except BaseException as exc:
                    setter, outcome = _set_exception, exc
            # Idle again before the outcome goes back: the caller's next call (a sequential
            # caller's) then finds this thread rather than starting another one.
            with self._lock:
                self._finished(1)
                self._idle += 1
            if ran:
                outbox.post(setter, future, outcome, expiry)

    def _run_lane(self, lane: _Lane) -> None:
        """Run one batch of ``lane``; if more came meanwhile, the lane goes to the back of the
        queue, so plain calls queued meanwhile run before its next batch."""
        with self._lock:
            items = lane.items[:BATCH_LIMIT]
            del lane.items[:BATCH_LIMIT]
            if not items:
                lane.queued = False
                self._idle += 1
                return
        live = [each for each in items if not each[1].done()]  # not timed out, cancelled
        outcomes: list[Any] = []
        failure: BaseException | None = None
        if live:
            try:
                outcomes = lane.fn([each[2] for each in live])
                if len(outcomes) != len(live):
                    raise RuntimeError(f"{_name(lane.fn)} gave {len(outcomes)} outcomes")
            except BaseException as exc:
                failure = exc
        # Done with the lane (when nothing came meanwhile) before the outcomes go back, as in
        # _work: the caller's next call finds this thread idle. Otherwise its next batch waits
        # its turn: this thread is idle again and that queue entry takes it (no net change).
        left: list[Any] = []
        with self._lock:
            self._finished(len(items))
            if lane.items and not self._closed:
                self._queue.put(lane)
            else:  # nothing more, or shut down meanwhile: what came is refused below
                left, lane.items = [(o, f, e) for o, f, _i, e, _set in lane.items], []
                self._finished(len(left))
                lane.queued = False
                self._idle += 1
        _refuse_closed(left)
        for index, (outbox, future, _item, expiry, on_value) in enumerate(live):
            outcome = failure if failure is not None else outcomes[index]
            if isinstance(outcome, BaseException):
                outbox.post(_set_exception, future, outcome, expiry)
            else:
                outbox.post(on_value, future, outcome, expiry)

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking calls; drop the queued ones; with ``wait``, join the running ones."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        while True:  # drop what is still queued
            try:
                call = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(call, _Fire):
                with self._lock:
                    self._finished(1)
                continue
            if isinstance(call, _Lane):
                with self._lock:
                    entries = [(o, f, e) for o, f, _item, e, _set in call.items]
                    call.items.clear()
                    self._finished(len(entries))
            elif call is not None:
                outbox, future, _fn, _args, expiry, _started, _setter = call
                entries = [(outbox, future, expiry)]
                with self._lock:
                    self._finished(1)
            else:
                continue
            _refuse_closed(entries)
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()


class _Fire:
    """A call nobody waits for (:meth:`StoreExecutor.fire`)."""

    __slots__ = ("args", "fn")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args

    def run(self) -> None:
        try:
            self.fn(*self.args)
        except Exception:  # nobody to tell but the log
            log.exception("a store call nobody waited for (%s) failed", _name(self.fn))


class _Lane:
    """Calls of one batched function waiting to run together; ``queued`` while a queue entry
    or a thread is on it (so one thread runs its batches at a time)."""

    __slots__ = ("fn", "items", "queued")

    def __init__(self, fn: Callable[[list[Any]], list[Any]]) -> None:
        self.fn = fn
        self.items: list[
            tuple[
                LoopInbox,
                asyncio.Future[Any],
                Any,
                asyncio.TimerHandle,
                # what hands the item's value to its future (see _set_result_or_late)
                Callable[[asyncio.Future[Any], Any, asyncio.TimerHandle], None],
            ]
        ] = []
        self.queued = False


_Call = tuple[
    LoopInbox,
    "asyncio.Future[Any]",
    Callable[..., Any],
    tuple[Any, ...],
    asyncio.TimerHandle,
    list[bool],
    Callable[["asyncio.Future[Any]", Any, asyncio.TimerHandle], None],  # its value's setter
]


def _set_result(future: asyncio.Future[Any], result: Any, expiry: asyncio.TimerHandle) -> None:
    expiry.cancel()
    if not future.done():
        future.set_result(result)


def _set_exception(
    future: asyncio.Future[Any], exc: BaseException, expiry: asyncio.TimerHandle
) -> None:
    expiry.cancel()
    if not future.done():
        future.set_exception(exc)


def _refuse_closed(
    entries: list[tuple[LoopInbox, asyncio.Future[Any], asyncio.TimerHandle]],
) -> None:
    """Fail calls that were still waiting when the executor shut down."""
    for outbox, future, expiry in entries:
        outbox.post(_set_exception, future, StoreUnavailableError("the store is closed"), expiry)


def _set_result_or_late(
    late: Callable[[Any], None] | None,
    also: asyncio.Future[None] | None,
    future: asyncio.Future[Any],
    result: Any,
    expiry: asyncio.TimerHandle,
) -> None:
    """:func:`_set_result`, resolving ``also`` with it; a result its caller no longer waits
    for (told it timed out, or gone) goes to ``late``."""
    expiry.cancel()
    if not future.done():
        future.set_result(result)
        if also is not None and not also.done():
            also.set_result(None)
    elif late is not None:
        late(result)


def _expire(
    future: asyncio.Future[Any], fn: Callable[..., Any], timeout: float, *, running: bool = False
) -> None:
    if not future.done():
        still = "; it is still running and may complete" if running else ""
        future.set_exception(
            StoreUnavailableError(
                f"{_database(fn)}: {_name(fn)} did not answer within {timeout:g} s{still}",
                running=running,
            )
        )


def _name(fn: Callable[..., Any]) -> str:
    return getattr(getattr(fn, "func", fn), "__name__", "a store call")  # through a partial


def _database(fn: Callable[..., Any]) -> str:
    """``database <url>`` when ``fn`` is a store's method (stores expose ``database``)."""
    fn = getattr(fn, "func", fn)  # a partial of one
    database = getattr(getattr(fn, "__self__", None), "database", None)
    return f"database {database}" if isinstance(database, str) else "the database"
