"""Claims a crash left pending are accounted for, even when no retry ever comes.

A keyed delivery claims its key before it sends. A process killed mid-send leaves that claim
pending: the code may have gone out, so it is never sent again, and until now only a retry
with the same key ever logged it (``outcome_unknown``). A user who gave up, or a backend that
never retries, left a delivery with no log event at all.

:class:`StaleClaims` sweeps them: every :data:`SWEEP_EVERY` seconds while the runtime's
background work runs, a pending claim older than the delivery budget plus the grace (no live
delivery takes that long) gets an ``outcome_unknown`` report stored on its record and one
``gd_send_*_failure`` log event. Whichever comes first, the sweep or a retry (or another node's
sweep), stores its report only while the claim is still pending (:meth:`IdempotencyStore.settle`),
and only that one writes the event: one event per delivery. Later retries replay the stored
report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from runtime.delivery.periodic import Periodic
from runtime.delivery.reports import report
from runtime.errors import StoreUnavailableError
from runtime.events import Channel, DeliveryReport, PhoneMessageRequest, Purpose
from runtime.store.executor import StoreExecutor
from runtime.store.idempotency import (
    STALE_BATCH,
    Claim,
    IdempotencyStore,
    StaleClaim,
    fingerprint,
)

__all__ = [
    "SWEEP_BATCHES",
    "SWEEP_EVERY",
    "StaleClaims",
    "claim_delivery_id",
    "interrupted_report",
]

log = logging.getLogger("runtime.delivery")
T = TypeVar("T")

SWEEP_EVERY = 60.0
"""Seconds between two sweeps (the first runs when the background work starts)."""
SWEEP_BATCHES = 20
"""Batches of :data:`~runtime.store.idempotency.STALE_BATCH` claims per sweep at most."""

Account = Callable[[PhoneMessageRequest, DeliveryReport], Awaitable[None]]


def claim_delivery_id(tenant: str, key: str, claim_id: str | None) -> str:
    """The id of the answer for a claim a crash left pending: the same for everyone who gives
    it (a sweep on any node, a retry), so its log event, should two of them write it, has one
    ``log_id``, which the stored log keeps once."""
    return fingerprint(tenant, key, claim_id or "")[:32]


def interrupted_report(request: PhoneMessageRequest, claim_id: str | None = None) -> DeliveryReport:
    """The answer for a delivery whose claim a crash left pending: it may have been sent."""
    key = request.idempotency_key or ""
    return report(
        request,
        "failed",
        [],
        reason="outcome_unknown",
        detail=f"the delivery with idempotency key {key!r} was interrupted (its process "
        "stopped with no report after the delivery budget); its code may or may not have been "
        "sent, so it is never sent again under this key",
        delivery_id=claim_delivery_id(request.tenant, key, claim_id),
    )


def request_of(claim: StaleClaim) -> PhoneMessageRequest:
    """The request a stale claim stands for, as far as its record tells: where it went. The
    code is not kept (and is in no event); nothing here is validated again: it was when the
    claim was made."""
    return PhoneMessageRequest.model_construct(
        tenant=claim.tenant,
        recipient=claim.recipient,
        code="",
        channel=cast(Channel, claim.channel),
        purpose=cast(Purpose, claim.purpose or "verification"),
        idempotency_key=claim.key,
    )


class StaleClaims:
    """Sweeps pending claims older than ``stale_after`` seconds: each is settled with
    :func:`interrupted_report` and accounted for (``account``: the observers and the log)
    by whoever settles it first."""

    def __init__(
        self,
        store: Callable[[], Awaitable[IdempotencyStore]],
        executor: StoreExecutor,
        account: Account,
        *,
        stale_after: float,
        timeout: float,
        owed: Callable[[str, str], bool] = lambda _tenant, _key: False,
    ) -> None:
        self._store = store
        self._executor = executor
        self._account = account
        self._stale_after = stale_after
        self._timeout = timeout
        self._owed = owed  # keys whose record this process still owes (owed_records.py)
        self._settling: set[asyncio.Task[object]] = set()  # settles and their events
        self._sweeps = Periodic(
            self.sweep,
            every=SWEEP_EVERY,
            what="sweeping claims left pending by a crash",
            done=self._swept,
        )
        self.passes = self._sweeps.passes
        """Set after each sweep (done or failed): what a test waits for."""
        self.accounted = 0
        """Claims this process settled and logged so far."""

    async def settle(
        self, request: PhoneMessageRequest, claim: Claim | StaleClaim
    ) -> DeliveryReport | None:
        """Settle ``claim`` (pending, stale) for ``request``: the report to answer with, or
        None when the record is gone. Logged here when this call stored it; a report another
        side stored first is returned as replayed, and logged by that side."""
        idempotency = await self._store()
        done = interrupted_report(request, claim.claim_id)
        settling = self._executor.submit(
            idempotency.settle,
            request.tenant,
            request.idempotency_key or "",
            claim.claim_id,
            done.model_dump_json(),
            timeout=self._timeout,
        )
        # once stored, the event is written whatever happens to the caller (cancelled, or a
        # sweep stopped at close): a report stored without its event would never be logged
        return await asyncio.shield(self._in_background(self._answer(settling, request, done)))

    async def _answer(
        self,
        settling: asyncio.Future[str | None],
        request: PhoneMessageRequest,
        done: DeliveryReport,
    ) -> DeliveryReport | None:
        try:
            stored = await settling
        except StoreUnavailableError:
            # The database did not answer: the answer may be stored with nobody left to log
            # it (later sweeps skip a settled claim). Logged now, under the claim's own id:
            # should a later sweep or retry log it too, the stored log keeps one.
            await self._logged(request, done)
            raise
        if stored is None:
            return None
        if stored == done.model_dump_json():
            await self._logged(request, done)
            return done
        earlier = DeliveryReport.model_validate_json(stored)
        return earlier.model_copy(update={"replayed": True})

    async def _logged(self, request: PhoneMessageRequest, done: DeliveryReport) -> None:
        self.accounted += 1
        await self._account(request, done)

    def _in_background(self, work: Awaitable[T]) -> asyncio.Task[T]:
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        task.add_done_callback(_retrieved)  # its caller may be gone: its failure is said there
        return task

    async def sweep(self) -> int:
        """One sweep: settle and log the stale claims, a batch at a time; how many this
        process accounted for. Raises StoreUnavailableError when the database does not
        answer in time."""
        idempotency = await self._store()
        accounted = 0
        for _ in range(SWEEP_BATCHES):
            stale = await self._executor.run(
                idempotency.stale, self._stale_after, timeout=self._timeout
            )
            for claim in stale:
                if self._owed(claim.tenant, claim.key):  # accounted: its record is on its way
                    continue
                done = await self.settle(request_of(claim), claim)
                accounted += done is not None and not done.replayed
            if len(stale) < STALE_BATCH:
                break
        return accounted

    def start(self) -> None:
        """Start the sweeps in the running loop. Idempotent."""
        self._sweeps.start()

    async def aclose(self) -> None:
        """Stop the sweeps (a sweep under way is abandoned between claims); the settles under
        way finish and write their events."""
        await self._sweeps.aclose()
        while self._settling:
            await asyncio.wait(set(self._settling))

    @staticmethod
    def _swept(accounted: int) -> None:
        if accounted:
            log.warning(
                "%d deliveries interrupted by a crash were logged as outcome_unknown "
                "(their codes may or may not have been sent; never sent again)",
                accounted,
            )


def _retrieved(task: asyncio.Task[object]) -> None:
    """Mark a settle's failure as seen (its caller, when there is one, got it too), so asyncio
    does not report it as never retrieved when nobody waits any more."""
    if not task.cancelled():
        task.exception()
