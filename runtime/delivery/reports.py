"""Building the :class:`DeliveryReport` a delivery ends with, whatever happened.

Kept apart from the pipeline so that every way a delivery can end (delivered, stored, rejected,
failed, a store that failed after sending) is written once, in one place.
"""

from __future__ import annotations

from runtime.events import Attempt, DeliveryReport, PhoneMessageRequest
from runtime.ids import new_id

__all__ = ["after_store_failure", "rejected", "report"]


def report(
    request: PhoneMessageRequest,
    status: str,
    attempts: list[Attempt],
    *,
    delivered_by: str | None = None,
    reason: str | None = None,
    detail: str | None = None,
    delivery_id: str | None = None,
) -> DeliveryReport:
    """The report; ``delivery_id`` is the rendered message's id (a provider's client reference
    and the report's id are one), or a new one when nothing was rendered."""
    return DeliveryReport(
        id=delivery_id or new_id(),
        tenant=request.tenant,
        recipient=request.recipient,
        channel=request.channel,
        purpose=request.purpose,
        status=status,
        reason=reason,
        detail=detail,
        delivered_by=delivered_by,
        attempts=attempts,
        idempotency_key=request.idempotency_key,
    )


def rejected(request: PhoneMessageRequest, reason: str, detail: str) -> DeliveryReport:
    """Stopped before any provider: nothing was sent."""
    return report(request, "rejected", [], reason=reason, detail=detail)


def after_store_failure(done: DeliveryReport, problem: str) -> DeliveryReport:
    """``done`` after its idempotency record could not be completed.

    The status stays the truth about the message; the reason says the store failed and the
    detail says whether the message went out, so the caller never retries a sent code.
    """
    if done.status in ("delivered", "stored"):
        sent = f"the message was {'sent' if done.status == 'delivered' else 'stored'} by "
        sent += f"{done.delivered_by}"
    elif any(a.handed_off for a in done.attempts):
        sent = "the message may have reached the carrier"
    else:
        sent = "the message was not sent"
        if done.reason:
            sent += f" ({done.reason}: {done.detail})"
    detail = (
        f"{sent}; its idempotency record could not be completed ({problem}): a retry with the "
        "same key is answered 'outcome_unknown' once the claim is stale, never sent again"
    )
    return done.model_copy(update={"reason": "store_unavailable", "detail": detail})
