"""Idempotency records a delivery could not store or release when it ended, tried again.

A delivery that ended is accounted for (its report returned, its log event written) even
when the database did not answer for its record: the claim then stays pending. Left so, the
sweep of stale claims (:mod:`stale_claims`) would take it for a delivery a crash interrupted
and log it a second time, as ``outcome_unknown``; and a key freed for a passing reason would
stay held. So the record owed is kept here and tried again in the background (a pause that
grows, then every 5 minutes, and once more at close) until the database takes it: the
report stored while the claim is still pending (:meth:`IdempotencyStore.settle`), or the key
released. The sweep leaves the keys owed here alone (:meth:`OwedRecords.owes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable

from runtime.errors import StoreUnavailableError
from runtime.store.executor import StoreExecutor
from runtime.store.idempotency import IdempotencyStore

__all__ = ["OWED_PAUSES", "OwedRecords"]

log = logging.getLogger("runtime.delivery")

OWED_PAUSES = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds before each try of the records owed, the first at once; then every 5 minutes, and
once more at close."""

# (claim id, report) to store; (None, None) to release the key
_Owed = tuple[str | None, str | None]


class OwedRecords:
    """The records this process owes the database, by ``(tenant, key)``."""

    def __init__(
        self,
        store: Callable[[], Awaitable[IdempotencyStore]],
        executor: StoreExecutor,
        *,
        timeout: float,
    ) -> None:
        self._store = store
        self._executor = executor
        self._timeout = timeout
        self._owed: dict[tuple[str, str], _Owed] = {}
        self._task: asyncio.Task[None] | None = None

    def owes(self, tenant: str, key: str) -> bool:
        """Whether the record of ``key`` is owed here (the sweep must leave it alone)."""
        return (tenant, key) in self._owed

    def complete(self, tenant: str, key: str, claim_id: str | None, report_json: str) -> None:
        """Store ``report_json`` on the claim ``claim_id`` of ``key`` later (it stays pending
        until then)."""
        self._owed[(tenant, key)] = (claim_id, report_json)
        self._start()

    def release(self, tenant: str, key: str) -> None:
        """Give ``key`` back later (nothing was sent for it)."""
        self._owed[(tenant, key)] = (None, None)
        self._start()

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def report(self, tenant: str, key: str) -> str | None:
        """The report owed to ``key``'s record (None when none is, or a release is): the
        answer a retry with the key gets meanwhile."""
        owed = self._owed.get((tenant, key))
        return None if owed is None else owed[1]

    async def _run(self) -> None:
        for turn, pause in enumerate(itertools.chain(OWED_PAUSES, itertools.repeat(300.0))):
            await asyncio.sleep(pause)
            if await self.pay():
                return
            if turn == len(OWED_PAUSES) - 1:
                log.error(
                    "%d idempotency records could not be stored for about 9 minutes; tried "
                    "again every 5 minutes and at close (the sweep of stale claims leaves "
                    "them alone here)",
                    len(self._owed),
                )

    async def pay(self) -> bool:
        """Try every record owed once: True when none is left."""
        if not self._owed:
            return True
        try:
            idempotency = await self._store()
        except StoreUnavailableError:
            return False
        for (tenant, key), (claim_id, report) in list(self._owed.items()):
            try:
                if report is None:
                    await self._executor.run(
                        idempotency.release, tenant, key, timeout=self._timeout
                    )
                else:
                    held = await self._executor.run(
                        idempotency.settle, tenant, key, claim_id, report, timeout=self._timeout
                    )
                    if held is not None and held != report:  # another node's sweep, first
                        log.warning(
                            "tenant %s, idempotency key %r: its delivery was logged here, and "
                            "the record holds another answer (outcome_unknown, given by a "
                            "sweep while this node could not reach the database)",
                            tenant,
                            key,
                        )
            except StoreUnavailableError:
                return False  # the database still does not answer: all wait for the next try
            if self._owed.get((tenant, key)) == (claim_id, report):
                del self._owed[(tenant, key)]
        return not self._owed

    async def aclose(self) -> None:
        """Stop the tries, then one last one."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._owed and not await self.pay():
            log.error(
                "%d idempotency records could not be stored before the close: their keys stay "
                "pending (answered outcome_unknown once stale; logged again by the sweep)",
                len(self._owed),
            )
