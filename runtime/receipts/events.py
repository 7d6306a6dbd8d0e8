"""The log event of a receipt: this project's own types (Auth0 has none for carrier status),
``receipt_delivered`` and ``receipt_undelivered``, shaped like the delivery events so that the
same readers, streams and queries take them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runtime.ids import new_id

__all__ = ["RECEIPT_DESCRIPTIONS", "receipt_event"]

RECEIPT_DESCRIPTIONS = {
    "receipt_delivered": "Carrier delivered the message",
    "receipt_undelivered": "Carrier could not deliver the message",
}


def receipt_event(
    *,
    tenant: str,
    delivery_id: str,
    provider: str,
    channel: str,
    status: str,
    carrier_status: str,
    error_code: str | None,
    message_id: str | None,
    recipient: str | None,
) -> dict[str, Any]:
    """One receipt's event; ``status`` is ``delivered`` or ``undelivered``."""
    kind = f"receipt_{status}"
    details: dict[str, Any] = {
        "delivery_id": delivery_id,
        "provider": provider,
        "channel": channel,
        "carrier_status": carrier_status,
    }
    if message_id:
        details["message_id"] = message_id
    if error_code:
        details["carrier_error"] = {"errorCode": error_code}
    return {
        "type": kind,
        "description": RECEIPT_DESCRIPTIONS[kind],
        "date": datetime.now(UTC),
        "tenant_name": tenant,
        "user_name": recipient,
        "details": details,
        "log_id": new_id(),
    }
