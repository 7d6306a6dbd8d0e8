"""What Plivo's, Infobip's, Sinch's and Telesign's delivery reports say, read into one shape.

Each provider names its final statuses differently; a report maps to ``delivered`` or
``undelivered`` when final, and to None when intermediate (queued, sent, pending), which the
route acknowledges and ignores. Unknown fields are ignored; a missing one is "".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Report", "infobip_reports", "plivo_report", "sinch_report", "telesign_report"]

_PLIVO = {
    "delivered": "delivered",
    "undelivered": "undelivered",
    "failed": "undelivered",
    "rejected": "undelivered",
}
_INFOBIP = {
    "DELIVERED": "delivered",
    "UNDELIVERABLE": "undelivered",
    "EXPIRED": "undelivered",
    "REJECTED": "undelivered",
}
_SINCH = {
    "Delivered": "delivered",
    "Failed": "undelivered",
    "Rejected": "undelivered",
    "Expired": "undelivered",
    "Aborted": "undelivered",
    "Cancelled": "undelivered",
}
_TELESIGN_PENDING = {203, 290, 291, 292, 295}  # handed to a gateway, in process, sent
_TELESIGN_DELIVERED = 200


@dataclass(frozen=True)
class Report:
    """One delivery report: the final status (None: intermediate) and the carrier's words."""

    status: str | None
    carrier_status: str
    error_code: str | None
    message_id: str | None
    recipient: str | None


def plivo_report(fields: Mapping[str, str]) -> Report:
    """Plivo's message status callback (form fields ``Status``, ``ErrorCode``, ...)."""
    carrier = fields.get("Status", "")
    status = _PLIVO.get(carrier)
    error = fields.get("ErrorCode") if status == "undelivered" else None
    return Report(status, carrier, error or None, fields.get("MessageUUID"), fields.get("To"))


def infobip_reports(body: Any) -> list[Report]:
    """Infobip's delivery report: ``{"results": [{messageId, to, status: {groupName, name},
    error: {id, name}}]}`` (one result per message; this service sends one)."""
    results = body.get("results") if isinstance(body, dict) else None
    reports = []
    for result in results if isinstance(results, list) else []:
        if not isinstance(result, dict):
            continue
        state = _object(result.get("status"))
        group = str(state.get("groupName") or "")
        status = _INFOBIP.get(group)
        error = _object(result.get("error"))
        code = error.get("name") or error.get("id") if status == "undelivered" else None
        reports.append(
            Report(
                status,
                str(state.get("name") or group),
                None if code in (None, "", 0, "NO_ERROR") else str(code),
                _text(result.get("messageId")),
                _text(result.get("to")),
            )
        )
    return reports


def sinch_report(body: Any) -> Report:
    """Sinch's per-recipient delivery report (``recipient_delivery_report_sms``)."""
    data = body if isinstance(body, dict) else {}
    carrier = str(data.get("status") or "")
    status = _SINCH.get(carrier)
    code = data.get("code") if status == "undelivered" else None
    return Report(
        status,
        carrier,
        None if code is None else str(code),
        _text(data.get("batch_id")),
        _text(data.get("recipient")),
    )


def telesign_report(body: Any) -> Report:
    """Telesign's transaction callback: ``{reference_id, status: {code, description}}``."""
    data = body if isinstance(body, dict) else {}
    state = _object(data.get("status"))
    try:
        code: int | None = int(state.get("code"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        code = None
    if code is None or code in _TELESIGN_PENDING:
        status = None
    else:
        status = "delivered" if code == _TELESIGN_DELIVERED else "undelivered"
    return Report(
        status,
        str(state.get("description") or code or "")[:32],
        str(code) if status == "undelivered" else None,
        _text(data.get("reference_id")),
        None,
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
