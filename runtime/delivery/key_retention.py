"""Idempotency records do not pile up: those older than the retention are deleted in the
background (:class:`KeyRetention`), every ten minutes while the runtime's background work runs.

Every keyed request leaves a record of about a kilobyte (its claim and stored report), so a
database kept forever grows with every message ever sent. A key is honoured for
``idempotency_retention_days`` (at least one day, far beyond any retry of a one-time code and
any delivery still in flight); after that it may be used again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from runtime.delivery.periodic import Periodic
from runtime.store.executor import StoreExecutor
from runtime.store.idempotency import PURGE_BATCH, IdempotencyStore

__all__ = ["PURGE_BATCHES", "PURGE_EVERY", "PURGE_PAUSE", "KeyRetention"]

log = logging.getLogger("runtime.delivery")

PURGE_EVERY = 600.0
"""Seconds between two passes (the first one runs when the background work starts)."""
PURGE_BATCHES = 200
"""Batches (:data:`~runtime.store.idempotency.PURGE_BATCH` records each) per pass at most;
the next pass goes on."""
PURGE_PAUSE = 0.05
"""Seconds between two batches: deliveries' claims and other store calls get the write lock
and the store's threads in between, so a large backlog never makes them wait."""


class KeyRetention:
    """Deletes old idempotency records, one pass now and then every :data:`PURGE_EVERY` s."""

    def __init__(
        self,
        store: Callable[[], Awaitable[IdempotencyStore]],
        executor: StoreExecutor,
        *,
        retention_days: float,
        timeout: float,
    ) -> None:
        self._store = store
        self._executor = executor
        self._retention_days = retention_days
        self._timeout = timeout
        self._passes = Periodic(
            self.purge,
            every=PURGE_EVERY,
            what="deleting old idempotency records",
            done=self._deleted,
        )
        self.passes = self._passes.passes
        """Set after each pass (done or failed): what a health check or a test waits for."""
        self.deleted = 0
        """Records deleted by this process so far."""

    async def purge(self) -> int:
        """One pass: delete the records claimed more than the retention ago, a batch at a
        time with a pause in between, at most :data:`PURGE_BATCHES` batches; how many.
        Raises :class:`StoreUnavailableError` when the database does not answer in time."""
        idempotency = await self._store()
        deleted = 0
        for batch in range(PURGE_BATCHES):
            if batch:
                await asyncio.sleep(PURGE_PAUSE)
            count = await self._executor.run(
                idempotency.purge, self._retention_days, timeout=self._timeout
            )
            deleted += count
            self.deleted += count
            if count < PURGE_BATCH:
                break
        return deleted

    def start(self) -> None:
        """Start the passes in the running loop. Idempotent."""
        self._passes.start()

    async def aclose(self) -> None:
        """Stop the passes (a pass under way is abandoned; its batches commit one by one)."""
        await self._passes.aclose()

    def _deleted(self, deleted: int) -> None:
        if deleted:
            log.info(
                "old idempotency records deleted: %d (older than %g days)",
                deleted,
                self._retention_days,
            )
