"""Counting messages for the usage triggers without slowing a delivery.

:meth:`UsageCounter.observe` runs on the loop after each report (the pipeline's ``after_send``
observers) and only adds to a dict. A background task writes what accumulated in one
transaction on the store executor as soon as the previous write is done, at most every
``interval`` seconds, so the database sees one write per batch rather than one per message;
a crossing queues the trigger's webhook job. A write that fails keeps its counts for the
next one. What a crash loses is the batch not yet written (at most ``interval`` seconds of
counts): a usage trigger is an alert, the log is the record of every message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from runtime import metrics
from runtime.errors import StoreUnavailableError
from runtime.events import DeliveryReport
from runtime.usage_triggers.store import Firing, UsageTriggerStore

__all__ = ["UsageCounter", "counts_as_message"]

log = logging.getLogger("runtime.usage_triggers")
_PURGE_EVERY = timedelta(hours=1)
_KEEP = timedelta(days=62)  # two months: a month's count stays while the month lasts


def counts_as_message(report: DeliveryReport) -> bool:
    """A message a provider was asked to send and took (or may have taken): what is billed."""
    if report.replayed:
        return False
    return any(a.outcome == "delivered" or a.handed_off for a in report.attempts)


class UsageCounter:
    def __init__(
        self,
        store: UsageTriggerStore,
        run: Callable[..., Awaitable[object]],
        fire: Callable[[Firing], Awaitable[None]],
        *,
        interval: float = 0.2,
    ) -> None:
        self._store = store
        self._run = run  # the store executor's run with the store timeout
        self._fire = fire
        self._interval = interval
        self._pending: dict[str, int] = {}
        self._due = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._purged = datetime.min.replace(tzinfo=UTC)

    def observe(self, report: DeliveryReport) -> None:
        """Count ``report`` if it is a message (on the loop; no I/O)."""
        if counts_as_message(report):
            self._pending[report.tenant] = self._pending.get(report.tenant, 0) + 1
            self._due.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="usage")

    async def flush(self) -> None:
        """Write what is pending now (the loop does it on its own; tests and shutdown call it)."""
        batch, self._pending = self._pending, {}
        if not batch:
            return
        moment = datetime.now(UTC)
        try:
            firings = await self._run(self._store.add_counts, batch, moment)
        except StoreUnavailableError as exc:
            for tenant, count in batch.items():  # kept for the next write
                self._pending[tenant] = self._pending.get(tenant, 0) + count
            log.warning("usage counts not written (kept for the next try): %s", exc)
            return
        assert isinstance(firings, list)
        for firing in firings:
            metrics.observe_usage_trigger(firing.tenant, firing.period)
            await self._fire(firing)
        if moment - self._purged >= _PURGE_EVERY:
            self._purged = moment
            with contextlib.suppress(StoreUnavailableError):
                await self._run(self._store.purge, moment - _KEEP)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()

    async def _loop(self) -> None:
        while True:
            await self._due.wait()
            self._due.clear()
            try:
                await self.flush()
            except Exception:  # a bug must not stop counting
                log.exception("usage counting failed")
            await asyncio.sleep(self._interval)  # pacing: one write per interval at most
            if self._pending:
                self._due.set()
