"""The async side of the job queue: one background task per process that claims due jobs and
runs their handlers, with bounded concurrency, never blocking the event loop.

Every database call goes through the store executor (its own threads, each call with a
deadline). The task looks for due jobs every ``job_poll_interval`` seconds, at once when this
process queues a job (:meth:`JobRunner.wake`) or when a running job frees a slot. A handler says
how its job ends (:class:`Done`, :class:`Again`, :class:`Failed`); the runner records it under
the job's lease. A handler must finish well within the lease (a job still running when its
lease expires may be claimed by another node); the pipeline's lease is twice its delivery
budget, and a retry is one delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Engine

from runtime.errors import StoreUnavailableError
from runtime.ids import new_id
from runtime.settings import Settings
from runtime.store.crypto import Keyring, SealError
from runtime.store.executor import StoreExecutor
from runtime.store.jobs import Job, JobQueue

__all__ = ["Again", "Done", "Failed", "Handler", "JobRunner", "Outcome", "per_tenant"]

log = logging.getLogger("runtime.jobs")
_PURGE_EVERY = 600.0  # seconds between two purges of finished jobs
_COMPLAIN_EVERY = 60.0  # seconds between two warnings that claiming fails
_KEEP_FINISHED = 86_400.0  # finished jobs (without payload) are kept a day, for inspection


@dataclass(frozen=True)
class Done:
    """The job is finished."""


@dataclass(frozen=True)
class Again:
    """Run the job again in ``delay`` seconds, with ``payload`` (None: keep the old one)."""

    delay: float
    payload: bytes | None = None


@dataclass(frozen=True)
class Failed:
    """The job failed for good; ``error`` is one line without secrets."""

    error: str


Outcome = Done | Again | Failed
Handler = Callable[[Job, bytes], Awaitable[Outcome]]


class JobRunner:
    """Claims and runs due jobs of the kinds registered, for one process (one "node")."""

    def __init__(
        self,
        open_engine: Callable[[], Awaitable[Engine]],
        executor: StoreExecutor,
        settings: Settings,
        *,
        lease: float,
    ) -> None:
        self._open_engine = open_engine
        self._executor = executor
        self._settings = settings
        self.lease = lease
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{new_id()[:8]}"
        self._handlers: dict[str, Handler] = {}
        self._queue: JobQueue | None = None
        self._opening = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._busy: Counter[str] = Counter()  # jobs running here, by tenant
        self._stopping = False
        self._purged = 0.0
        self._complained = -_COMPLAIN_EVERY

    def register(self, kind: str, handler: Handler) -> None:
        """Run jobs of ``kind`` with ``handler``; register before :meth:`start`."""
        self._handlers[kind] = handler

    @property
    def running(self) -> int:
        """Jobs this process is running now."""
        return len(self._running)

    async def queue(self) -> JobQueue:
        """The queue, opened on the store executor the first time (the master key is read or
        made then: a bad key is a ConfigurationError naming the setting or the file)."""
        if self._queue is None:
            async with self._opening:
                if self._queue is None:
                    engine = await self._open_engine()
                    keys = await self._executor.run(
                        Keyring.load,
                        _secret(self._settings),
                        self._settings.data_dir,
                        timeout=self._settings.store_timeout,
                    )
                    self._queue = JobQueue(engine, keys)
        return self._queue

    def start(self) -> None:
        """Start the background task in the running loop (again after it ended: no-op while
        it runs, and nothing after :meth:`aclose`)."""
        if self._stopping or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="job-runner")

    def wake(self) -> None:
        """Look for due jobs now (this process just queued one)."""
        self._wake.set()

    async def aclose(self) -> None:
        """Stop claiming, then wait for the jobs running here to finish (queued jobs stay in
        the database for the next start or another node)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._running:
            await asyncio.wait(set(self._running))

    async def _loop(self) -> None:
        settings = self._settings
        while not self._stopping:
            self._wake.clear()  # before claiming: a wake during the claim is not lost
            free = settings.job_workers - len(self._running)
            if free > 0 and self._handlers:
                for job in await self._claim(free):
                    task = asyncio.get_running_loop().create_task(self._run(job))
                    self._running.add(task)
                    self._busy[job.tenant] += 1
                    task.add_done_callback(partial(self._finished, job.tenant))
            await self._purge()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.job_poll_interval):
                    await self._wake.wait()

    def _finished(self, tenant: str, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._busy[tenant] -= 1
        if self._busy[tenant] <= 0:
            del self._busy[tenant]
        self._wake.set()  # a slot is free

    async def _claim(self, limit: int) -> list[Job]:
        try:
            queue = await self.queue()
            claim = partial(
                queue.claim,
                self.owner,
                limit=limit,
                lease=self.lease,
                kinds=tuple(self._handlers),
                per_tenant=per_tenant(self._settings.job_workers),
                busy=dict(self._busy),
            )
            return await self._executor.run(claim, timeout=self._settings.store_timeout)
        except Exception as exc:  # the database is down, or a bad master key
            now = time.monotonic()
            if now - self._complained >= _COMPLAIN_EVERY:  # not every poll: once a minute
                self._complained = now
                log.warning("due jobs not claimed: %s: %s", type(exc).__name__, exc)
        return []

    async def _run(self, job: Job) -> None:
        """Run one job's handler and record its outcome; nothing escapes."""
        queue = await self.queue()
        try:
            payload = queue.payload(job)
        except SealError as exc:
            outcome: Outcome = Failed(f"payload cannot be opened: {exc}")
        else:
            try:
                outcome = await self._handlers[job.kind](job, payload)
            except Exception as exc:  # a bug in a handler; its message may hold secrets
                log.exception("job %s (%s) failed", job.id, job.kind)
                outcome = Failed(f"handler raised {type(exc).__name__}")
        await self._record(queue, job, outcome)

    async def _record(self, queue: JobQueue, job: Job, outcome: Outcome) -> None:
        timeout = self._settings.store_timeout
        try:
            if isinstance(outcome, Done):
                kept = await self._executor.run(queue.complete, job, self.owner, timeout=timeout)
            elif isinstance(outcome, Again):
                kept = await self._executor.run(
                    _reschedule, queue, job, self.owner, outcome, timeout=timeout
                )
            else:
                kept = await self._executor.run(
                    queue.fail, job, self.owner, outcome.error, timeout=timeout
                )
        except StoreUnavailableError as exc:
            # the lease runs out and the job is claimed again; its handler sees the extra run
            log.warning("job %s (%s): outcome not recorded: %s", job.id, job.kind, exc)
            return
        if not kept:
            log.warning("job %s (%s): the lease was lost before its outcome", job.id, job.kind)

    async def _purge(self) -> None:
        now = time.monotonic()
        if self._queue is None or now - self._purged < _PURGE_EVERY:
            return
        self._purged = now
        try:
            await self._executor.run(
                self._queue.purge, _KEEP_FINISHED, timeout=self._settings.store_timeout
            )
        except StoreUnavailableError as exc:
            log.warning("finished jobs not purged: %s", exc)


def per_tenant(workers: int) -> int:
    """The most of one node's ``workers`` job slots one tenant's jobs may hold at once: a
    quarter (at least one), so one tenant's slow jobs (a frozen log stream receiver holding
    each for its whole timeout) leave the rest to the other tenants' (retried codes)."""
    return max(1, workers // 4)


def _reschedule(queue: JobQueue, job: Job, owner: str, again: Again) -> bool:
    return queue.reschedule(job, owner, delay=again.delay, payload=again.payload)


def _secret(settings: Settings) -> str | None:
    return None if settings.master_key is None else settings.master_key.get_secret_value()
