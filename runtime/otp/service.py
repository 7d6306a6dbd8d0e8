"""The Verify API's flow: make a code, keep its HMAC, send it through the pipeline, check it.

Sending goes through :meth:`Pipeline.deliver` like any code (policy, templates, providers,
fallback, its report and ``gd_send_*`` event), under the delivery idempotency key
``otp:<row id>``. The caller's own idempotency key is the row's: a retried request finds the
row the first one made (on any node: the key is unique in the database) and answers with its
delivery, never sending a second code. Once the row is made, the rest runs to its end even if
the caller goes away, so every row gets its delivery and its events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from runtime.delivery import Pipeline
from runtime.delivery.stale_claims import interrupted_report
from runtime.errors import ConflictError
from runtime.events import Channel, ClientInfo, DeliveryReport, PhoneMessageRequest, RequestContext
from runtime.logs.events import event_lines, otp_event
from runtime.metrics import observe_code_check
from runtime.otp.codes import new_code
from runtime.otp.store import Check, Kind, OtpStore
from runtime.store.idempotency import Claim, fingerprint

__all__ = ["Caller", "Checked", "Sent", "VerifyService", "delivery_key"]

log = logging.getLogger("runtime.otp")

T = TypeVar("T")
Run = Callable[..., Awaitable[Any]]
Submit = Callable[..., "asyncio.Future[Any]"]
"""``submit(fn, *args, late=callback)``: ``fn`` queued on the store executor now, as a future;
``late`` gets its value when it completed after its deadline or its caller left."""

_PURPOSE = {"enrollment": "enrollment", "challenge": "verification"}


@dataclass(frozen=True)
class Caller:
    """Who asks, for the delivery and the log events: tenant, locale, client and request."""

    tenant: str
    locale: str = "en"
    client: ClientInfo | None = None
    request: RequestContext | None = None


@dataclass(frozen=True)
class Sent:
    """A row and the summary of the delivery of its code (``replayed``: an earlier request's)."""

    kind: Kind
    row: dict[str, Any]
    delivery: dict[str, Any] | None
    replayed: bool = False


@dataclass(frozen=True)
class Checked:
    """The outcome of one code check (see :class:`runtime.otp.store.Check`)."""

    kind: Kind
    check: Check


def delivery_key(row_id: str) -> str:
    """The pipeline idempotency key of a row's one delivery."""
    return f"otp:{row_id}"


def summary(report: DeliveryReport) -> dict[str, Any]:
    """What the API and the row keep of a delivery report."""
    return {
        "id": report.id,
        "status": report.status,
        "reason": report.reason,
        "detail": report.detail,
        "delivered_by": report.delivered_by,
        "limit": report.limit,  # rate_limited: the rule that refused
        "retry_after": report.retry_after,  # seconds (HTTP Retry-After)
    }


class VerifyService:
    """Enrollments and challenges over a :class:`Pipeline` and an :class:`OtpStore`.

    ``run(fn, *args)`` runs a blocking store call off the loop (the API's store executor).
    """

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        store: OtpStore,
        run: Run,
        submit: Submit | None = None,
        code_length: int = 6,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self._run = run
        self._submit = submit
        self.code_length = code_length
        self._background: set[asyncio.Task[Any]] = set()

    async def enroll(
        self,
        caller: Caller,
        *,
        user_id: str,
        phone_number: str,
        channel: Channel,
        idempotency_key: str | None = None,
    ) -> Sent:
        """Make an enrollment of ``phone_number`` and send its code (gd_start_enroll)."""
        digest = fingerprint("enrollment", user_id, phone_number, channel)
        return await self._start(
            "enrollment",
            caller,
            digest,
            idempotency_key,
            user_id=user_id,
            channel=channel,
            phone_number=phone_number,
        )

    async def challenge(
        self,
        caller: Caller,
        *,
        user_id: str,
        channel: Channel | None = None,
        idempotency_key: str | None = None,
    ) -> Sent:
        """Send a code to the user's enrolled phone (gd_start_auth); :class:`NotFoundError`
        when the user has no confirmed enrollment."""
        digest = fingerprint("challenge", user_id, channel or "")
        return await self._start(
            "challenge", caller, digest, idempotency_key, user_id=user_id, channel=channel or ""
        )

    async def confirm(self, caller: Caller, id: str, code: str) -> Checked:
        """Check an enrollment's code (gd_enrollment_complete or gd_auth_failed)."""
        return await self._check("enrollment", caller, id, code)

    async def verify(self, caller: Caller, id: str, code: str) -> Checked:
        """Check a challenge's code (gd_auth_succeed or gd_auth_failed)."""
        return await self._check("challenge", caller, id, code)

    # -- sending ------------------------------------------------------------------------------

    async def _start(
        self,
        kind: Kind,
        caller: Caller,
        digest: str,
        key: str | None,
        **fields: Any,
    ) -> Sent:
        code = new_code(self.code_length)
        row, created = await self._run(
            _create,
            self.store,
            kind,
            dict(
                tenant=caller.tenant,
                locale=caller.locale,
                code=code,
                digest=digest,
                idempotency_key=key,
                **fields,
            ),
        )
        if not created:
            if row["request_digest"] != digest:
                raise ConflictError(
                    f"idempotency key {key!r} was used for a different {kind} request"
                )
            return Sent(kind, row, await self._earlier(kind, caller, row), replayed=True)
        # from here the row must get its delivery and events, whatever the caller does
        task = asyncio.get_running_loop().create_task(self._send(kind, caller, row, code))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return await asyncio.shield(task)

    async def _send(self, kind: Kind, caller: Caller, row: dict[str, Any], code: str) -> Sent:
        phone = row.get("phone_number") or await self._run(self.store.phone_of, row)
        row["phone_number"] = phone
        start = "gd_start_enroll" if kind == "enrollment" else "gd_start_auth"
        await self._log(start, caller, row, {f"{kind}_id": row["id"]})
        request = _delivery_request(kind, caller, row, phone, code)
        report = await self.pipeline.deliver(request)
        delivery = summary(report)
        sent = report.status != "rejected"  # rejected: nothing reached a provider
        await self._run(_record, self.store, kind, caller.tenant, row["id"], delivery, sent)
        row["delivery"] = delivery
        if not sent:
            row["status"] = "not_sent"
        return Sent(kind, row, delivery)

    async def _earlier(
        self, kind: Kind, caller: Caller, row: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The delivery of the request that made ``row``: kept on the row, else read from the
        pipeline's idempotency record (waiting for it a while: it may be in flight on another
        node); None when it is still not there. A record left pending by a crash (older than
        the delivery budget and the grace) is an interrupted delivery: accounted for here,
        once, as ``outcome_unknown`` (its code may have gone out; never sent again)."""
        if row.get("delivery") is not None:
            return dict(row["delivery"])
        idempotency = await self._run(_idempotency_of, self.pipeline)  # may open the store
        settings = self.pipeline.settings
        deadline = time.monotonic() + settings.idempotency_wait
        stale_after = self.pipeline.delivery_budget + settings.idempotency_grace
        pause = 0.01
        while True:
            claim = await self._run(idempotency.get, row["tenant"], delivery_key(row["id"]))
            if claim is not None and claim.report is not None:
                return summary(DeliveryReport.model_validate_json(claim.report))
            if claim is not None and _age(claim.created_at) > stale_after:
                return await self._interrupted(kind, caller, row, claim)
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(pause)  # polling the shared database (maybe another node's)
            pause = min(pause * 2, 0.25)

    async def _interrupted(
        self, kind: Kind, caller: Caller, row: dict[str, Any], claim: Claim
    ) -> dict[str, Any]:
        """Account for a delivery a crash interrupted: ``outcome_unknown`` on the pipeline's
        record and on the row. Its log event is written once, by whichever settled the
        pipeline's record first: this request, another node's, or the pipeline's sweep of
        stale claims (runtime/delivery/stale_claims.py)."""
        phone = row.get("phone_number") or await self._run(self.store.phone_of, row)
        # the code is not known here (the row keeps its digest), and is in no event
        request = _delivery_request(kind, caller, row, phone, "0" * self.code_length)
        settled = await self.pipeline.stale_claims.settle(request, claim)
        logged = settled is not None
        done = settled if settled is not None else interrupted_report(request, claim.claim_id)
        delivery = summary(done)
        recorded = await self._run(
            _record_once, self.store, kind, caller.tenant, row["id"], delivery
        )
        if not recorded:  # another request accounted for it: its record is the answer
            return dict(
                (await self._run(_row, self.store, kind, caller.tenant, row["id"])).get("delivery")
                or delivery
            )
        sink = self.pipeline.log_sink
        if not logged and sink is not None:  # the pipeline's record was gone: logged here
            await sink.write(request, done)
        return delivery

    # -- checking -----------------------------------------------------------------------------

    async def _check(self, kind: Kind, caller: Caller, id: str, code: str) -> Checked:
        """Check ``code``; the check is accounted for (metric, log event) whatever happens to
        its caller: a check the database took after its deadline (the caller was told 503)
        or after its caller left still counts, and still logs its event."""
        if self._submit is None:
            check: Check = await self._run(self.store.check, kind, caller.tenant, id, code)
        else:
            late = partial(self._late_check, kind, caller, id)
            check = await self._submit(self.store.check, kind, caller.tenant, id, code, late=late)
        task = self._in_background(self._account_check(kind, caller, id, check))
        await asyncio.shield(task)  # a caller that leaves now does not lose the event
        return Checked(kind, check)

    def _late_check(self, kind: Kind, caller: Caller, id: str, check: Check) -> None:
        """A check the store made after its caller stopped waiting: account for it."""
        self._in_background(self._account_check(kind, caller, id, check))

    def _in_background(self, work: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_said_if_failed)
        return task

    async def _account_check(self, kind: Kind, caller: Caller, id: str, check: Check) -> None:
        """The check's metric, then its log event (``gd_enrollment_complete``,
        ``gd_auth_succeed`` or ``gd_auth_failed``)."""
        observe_code_check(caller.tenant, kind, check.outcome)  # before the log: it may fail
        if check.row is None:
            return
        row = check.row
        if kind == "challenge":
            row["phone_number"] = await self._run(self.store.phone_of, row)
        details: dict[str, Any] = {f"{kind}_id": id}
        if check.outcome == "ok":
            event = "gd_enrollment_complete" if kind == "enrollment" else "gd_auth_succeed"
        else:
            event = "gd_auth_failed"
            details["failure_details"] = {
                "errorCode": error_code(check.outcome),
                "message": FAILURES[check.outcome],
            }
            if check.outcome in ("wrong", "exhausted"):  # what the wrong codes left
                details["attempts_left"] = check.attempts_left
        await self._log(event, caller, row, details)  # the code is never in an event

    async def _log(
        self,
        kind: str,
        caller: Caller,
        row: dict[str, Any],
        details: dict[str, Any],
    ) -> None:
        sink = self.pipeline.log_sink
        if sink is None:
            return
        client = caller.client or ClientInfo()
        request = caller.request or RequestContext()
        event = otp_event(
            kind,
            tenant=caller.tenant,
            user_id=row["user_id"],
            phone_number=row["phone_number"],
            client_id=client.client_id,
            client_name=client.name,
            ip=request.ip,
            user_agent=request.user_agent,
            details=details,
        )
        await sink.write_lines(event_lines([event], []))


FAILURES: dict[str, str] = {
    "wrong": "Invalid code.",
    "expired": "The code has expired: ask for a new one.",
    "exhausted": "Too many wrong codes: ask for a new one.",
    "used": "The code was already used.",
    "not_sent": "No code was sent for this request.",
    "not_found": "Not found.",
}
"""One line for each outcome of a check other than ``ok`` (the API's messages)."""


def error_code(outcome: str) -> str:
    """The ``errorCode`` of a check's outcome other than ``ok``: the API's answer and the log
    event's ``failure_details`` say the same (``invalid_code``, ``used_code``...)."""
    return {"wrong": "invalid_code", "exhausted": "too_many_attempts"}.get(
        outcome, f"{outcome}_code"
    )


def _create(store: OtpStore, kind: Kind, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    return store.create(kind, **fields)


def _idempotency_of(pipeline: Pipeline) -> Any:
    return pipeline.idempotency


def _record(
    store: OtpStore, kind: Kind, tenant: str, id: str, delivery: dict[str, Any], sent: bool
) -> None:
    store.record_delivery(kind, tenant, id, delivery, sent=sent)


def _said_if_failed(task: asyncio.Task[None]) -> None:
    """A code check's accounting that failed (the database, the log) is said, not lost as a
    task exception nobody retrieves."""
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        log.error("a code check's event was not written: %s: %s", type(exc).__name__, exc)


def _delivery_request(
    kind: Kind, caller: Caller, row: dict[str, Any], phone: str, code: str
) -> PhoneMessageRequest:
    """The pipeline request of ``row``'s one delivery (its idempotency key: the row's)."""
    return PhoneMessageRequest.create(
        tenant=caller.tenant,
        recipient=phone,
        code=code,
        channel=row["channel"],
        purpose=_PURPOSE[kind],
        locale=row["locale"],
        user={"user_id": row["user_id"]},
        client=caller.client or ClientInfo(),
        request=caller.request or RequestContext(),
        idempotency_key=delivery_key(row["id"]),
    )


def _record_once(
    store: OtpStore, kind: Kind, tenant: str, id: str, delivery: dict[str, Any]
) -> bool:
    return store.record_delivery(kind, tenant, id, delivery, sent=True, only_first=True)


def _row(store: OtpStore, kind: Kind, tenant: str, id: str) -> dict[str, Any]:
    return store.get(kind, tenant, id)


def _age(created_at: datetime | None) -> float:
    """Seconds since ``created_at`` (UTC; 0 when unknown)."""
    if created_at is None:
        return 0.0
    return (datetime.now(UTC) - created_at).total_seconds()
