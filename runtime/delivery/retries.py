"""``api.notification.retry(reason)`` as Auth0 does it: the action runs again, later.

An action that calls ``retry`` (error ``notification_retry``) without having handed the message
off gets its delivery queued in the runtime database (:mod:`runtime.store.jobs`, the request
and its code sealed with the master key) and re-run after each of ``notification_retry_delays``
(10, 20, 40, 80, 120 s: five retries within about four and a half minutes). The caller's report
says ``retrying``: not delivered yet. No fallback happens while retries remain; ``drop`` ends the
delivery (failed, never a fallback); after the last retry the usual fallback rules apply to the
last failure. The final report (same delivery id, every try in ``attempts``) reaches the
``after_send`` observers and the log, and replaces the report of the idempotency key.

A retry whose earlier run was interrupted (its node died holding the job) is never run again:
its action may have sent the code, so the delivery ends ``failed`` / ``outcome_unknown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import Engine

from runtime.delivery.attempt import log_scrubbed
from runtime.delivery.reports import after_store_failure, report
from runtime.errors import ConfigurationError, StoreUnavailableError, UnknownTenantError
from runtime.events import Attempt, DeliveryReport, PhoneMessageRequest
from runtime.providers import PhoneMessage
from runtime.store.jobrunner import Again, Done, Outcome
from runtime.store.jobs import Job, QueueFullError

if TYPE_CHECKING:
    from runtime.delivery.pipeline import Pipeline, _Progress

__all__ = ["DROP", "KIND", "RETRY", "NotificationRetries", "opened_engine"]

log = logging.getLogger("runtime.delivery")
KIND = "notification_retry"
"""The job kind of a delivery waiting for its next try."""
RETRY = "notification_retry"
DROP = "notification_drop"


class _State(BaseModel):
    """What a queued retry carries (sealed at rest: it holds the code)."""

    request: dict[str, Any]
    message_id: str
    text: str
    attempts: list[Attempt]
    claims: int = 0  # claims of the job so far: one more than expected means an interrupted run
    logged: int = 0  # attempts the ``retrying`` report logged: the final one logs the rest


class NotificationRetries:
    """Queues, runs and ends the retries of one pipeline (see the module docstring)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._origins: dict[str, asyncio.Task[Any]] = {}

    @staticmethod
    def asked(attempt: Attempt) -> bool:
        """The action asked for a retry and nothing may have reached the carrier."""
        return attempt.error_code == RETRY and not attempt.handed_off

    @staticmethod
    def dropped(
        request: PhoneMessageRequest, message: PhoneMessage, attempts: list[Attempt]
    ) -> DeliveryReport | None:
        """The failed report of an action that called ``drop``: no retry, no fallback."""
        last = attempts[-1]
        if last.error_code != DROP:
            return None
        return report(
            request,
            "failed",
            attempts,
            reason="notification_drop",
            detail=f"{last.provider}: {last.error}; dropped by the action: no retry, no fallback",
            delivery_id=message.id,
        )

    async def schedule(
        self, request: PhoneMessageRequest, message: PhoneMessage, attempts: list[Attempt]
    ) -> DeliveryReport | None:
        """Queue the first retry; the ``retrying`` report, or None when it cannot be queued
        (the tenant's queue is full, or the database failed): then the usual rules apply."""
        pipeline = self._pipeline
        delays = pipeline.settings.notification_retry_delays
        state = _State(
            request=request.model_dump(mode="json"),
            message_id=message.id,
            text=message.text,
            attempts=attempts,
            logged=len(attempts),
        )
        try:
            queue = await pipeline.jobs.queue()
            await pipeline._store(_enqueue, queue, request.tenant, state, delays[0], _cap(pipeline))
        except (QueueFullError, StoreUnavailableError) as exc:
            log.warning("retry of delivery %s not queued: %s", message.id, exc)
            return None
        task = asyncio.current_task()
        if task is not None:  # this node's job waits for this report to be accounted first
            self._origins[message.id] = task
            task.add_done_callback(lambda _: self._origins.pop(message.id, None))
        if not pipeline.closing:
            pipeline.jobs.start()
            pipeline.jobs.wake()
        last = attempts[-1]
        return report(
            request,
            "retrying",
            attempts,
            reason="notification_retry",
            detail=f"{last.provider}: {last.error}; retry 1 of {len(delays)} in "
            f"{delays[0]:g} s (no fallback while retries remain)",
            delivery_id=message.id,
        )

    async def run(self, job: Job, payload: bytes) -> Outcome:
        """One retry of a queued delivery: the action again, then reschedule or end it."""
        state = _State.model_validate_json(payload)
        request = PhoneMessageRequest.model_validate(state.request)
        origin = self._origins.get(state.message_id)
        if origin is not None:  # the first report is still on its way here: let it finish
            await asyncio.wait({origin})
        if job.attempts != state.claims + 1:
            return await self._interrupted(request, state)
        pipeline = self._pipeline
        try:
            first = await self._first_report(request, state.message_id)
            waited = (datetime.now(UTC) - job.created_at).total_seconds()
            if first == "pending" and waited > pipeline.delivery_budget + (
                pipeline.settings.idempotency_grace
            ):  # its first report's record was never completed (its store failed)
                first = await self._take_over(request, state)
        except StoreUnavailableError as exc:
            log.warning("retry of delivery %s postponed: %s", state.message_id, exc)
            first = "pending"
        if first == "answered":  # the sweep of stale claims answered it (and logged it)
            return Done()  # outcome_unknown: never sent again
        if first == "pending":
            state.claims = job.attempts
            return Again(self._pipeline.settings.job_poll_interval, _dump(state))
        try:
            return await self._retry(request, state, job)
        except Exception as exc:
            log_scrubbed("a retry failed unexpectedly", exc, [request.code])
            await self._end(
                request,
                report(
                    request,
                    "failed",
                    state.attempts,
                    reason="internal_error",
                    detail=f"internal error ({type(exc).__name__}) during a retry; the message "
                    "may or may not have been sent",
                    delivery_id=state.message_id,
                ),
                since=state.logged,
            )
            return Done()

    async def _retry(self, request: PhoneMessageRequest, state: _State, job: Job) -> Outcome:
        from runtime.delivery.pipeline import _Progress  # the pipeline imports this module

        pipeline = self._pipeline
        delays = pipeline.settings.notification_retry_delays
        try:
            tenant = await pipeline.tenant(request.tenant)  # loaded if this node lacks it
        except StoreUnavailableError as exc:  # nothing was tried: try again at the next poll
            log.warning("retry of delivery %s postponed: %s", state.message_id, exc)
            state.claims = job.attempts
            return Again(pipeline.settings.job_poll_interval, _dump(state))
        except ConfigurationError as exc:  # unknown, or its config cannot be used
            reason = "unknown_tenant" if isinstance(exc, UnknownTenantError) else "tenant_unusable"
            done = report(
                request,
                "failed",
                state.attempts,
                reason=reason,
                detail=f"{exc}; the retries of this delivery end",
                delivery_id=state.message_id,
            )
            await self._end(request, done, since=state.logged)
            return Done()
        message = _message(request, state, pipeline.settings.attempt_timeout)
        progress = _Progress()
        attempt, is_default = await pipeline._attempt(
            tenant.provider, message, tenant, progress, fallback=False
        )
        attempts = [*state.attempts, attempt]
        retries_done = len(attempts) - 1
        if attempt.outcome == "delivered":
            done = pipeline._success(request, attempts, message)
        elif self.asked(attempt) and retries_done < len(delays):
            state.attempts = attempts
            state.claims = job.attempts
            return Again(delays[retries_done], _dump(state))
        else:
            done = self.dropped(request, message, attempts) or await pipeline._after_primary(
                request, message, tenant, progress, attempts, is_default
            )
        await self._end(request, done, progress, since=state.logged)  # progress: the wrappers'
        return Done()

    async def _interrupted(self, request: PhoneMessageRequest, state: _State) -> Outcome:
        """An earlier run of this retry stopped midway: its action may have sent the code."""
        if await self._already_ended(request, state.message_id):
            return Done()  # it ended and reported; only the job's own end was lost
        done = report(
            request,
            "failed",
            state.attempts,
            reason="outcome_unknown",
            detail="a retry of this delivery was interrupted (its node stopped while running "
            "it); the code may or may not have been sent, so it is never sent again",
            delivery_id=state.message_id,
        )
        await self._end(request, done, since=state.logged)
        return Done()

    async def _end(
        self,
        request: PhoneMessageRequest,
        done: DeliveryReport,
        progress: _Progress | None = None,
        *,
        since: int,
    ) -> None:
        """The final report: into the idempotency record, then to the observers and the log
        (``since``: the attempts the ``retrying`` report logged; this one logs the others)."""
        pipeline = self._pipeline
        key = request.idempotency_key
        if key is not None:
            try:
                idempotency, _ = await pipeline._stores()
                await pipeline._store(
                    idempotency.complete, request.tenant, key, done.model_dump_json()
                )
            except StoreUnavailableError as exc:
                done = after_store_failure(done, str(exc))
        await pipeline._account(request, done, progress, since=since)

    async def _first_report(self, request: PhoneMessageRequest, delivery_id: str) -> str:
        """What the key's record holds: ``ready`` (this delivery's ``retrying`` report, which
        the final one may replace; or no key), ``pending`` (a first delivery not finished yet,
        maybe elsewhere) or ``answered`` (another answer: the sweep of stale claims found the
        first report's record never completed and answered ``outcome_unknown``)."""
        key = request.idempotency_key
        if key is None:
            return "ready"
        pipeline = self._pipeline
        idempotency, _ = await pipeline._stores()
        claim = await pipeline._store(idempotency.get, request.tenant, key)
        if claim is None:
            return "ready"
        return _held(claim.report, delivery_id)

    async def _take_over(self, request: PhoneMessageRequest, state: _State) -> str:
        """Store this delivery's ``retrying`` report on its record the first report never
        reached, unless the sweep of stale claims answered it first: ``ready`` or
        ``answered``."""
        pipeline = self._pipeline
        retrying = report(
            request,
            "retrying",
            state.attempts,
            reason="notification_retry",
            detail="its first report's record was stored by its retry",
            delivery_id=state.message_id,
        )
        idempotency, _ = await pipeline._stores()
        key = request.idempotency_key or ""
        held = await pipeline._store(
            idempotency.settle_pending, request.tenant, key, retrying.model_dump_json()
        )
        return "ready" if held is None else _held(held, state.message_id)

    async def _already_ended(self, request: PhoneMessageRequest, delivery_id: str) -> bool:
        key = request.idempotency_key
        if key is None:
            return False
        with contextlib.suppress(StoreUnavailableError):
            idempotency, _ = await self._pipeline._stores()
            claim = await self._pipeline._store(idempotency.get, request.tenant, key)
            if claim is not None and claim.report is not None:
                stored = DeliveryReport.model_validate_json(claim.report)
                return stored.id == delivery_id and stored.status != "retrying"
        return False


async def opened_engine(pipeline: Pipeline) -> Engine:
    """The pipeline's engine, opened (and migrated) on its store executor if need be."""
    await pipeline._stores()
    engine: Engine = pipeline._engine
    return engine


def _enqueue(queue: Any, tenant: str, state: _State, delay: float, cap: int) -> str:
    job_id: str = queue.enqueue(KIND, tenant, _dump(state), delay=delay, max_pending=cap)
    return job_id


def _cap(pipeline: Pipeline) -> int:
    return pipeline.settings.notification_retry_max_pending


def _dump(state: _State) -> bytes:
    return state.model_dump_json().encode()


def _message(request: PhoneMessageRequest, state: _State, timeout: float) -> PhoneMessage:
    """The message of the first try again: same id (the delivery id) and text."""
    return PhoneMessage(
        id=state.message_id,
        tenant=request.tenant,
        recipient=request.recipient,
        channel=request.channel,
        purpose=request.purpose,
        locale=request.locale,
        code=request.code,
        text=state.text,
        timeout=timeout,
        user=request.user,
        client=request.client,
        request=request.request,
    )


def _held(stored: str | None, delivery_id: str) -> str:
    """``pending``, ``ready`` (the stored report is this delivery's ``retrying`` one) or
    ``answered`` (another answer is stored)."""
    if stored is None:
        return "pending"
    held = DeliveryReport.model_validate_json(stored)
    return "ready" if held.id == delivery_id and held.status == "retrying" else "answered"
