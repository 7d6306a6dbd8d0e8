"""Log events with Auth0's codes, and the JSON lines the sink writes for them.

One event per attempt: ``gd_send_sms`` / ``gd_send_voice`` when it delivered,
``gd_send_sms_failure`` / ``gd_send_voice_failure`` when it failed; a request rejected before
any attempt gets one failure event carrying the reason. The OTP code never appears: message
texts are not logged, and each line is scrubbed of the code as a last guard.
"""

from __future__ import annotations

from typing import Any

import orjson

from runtime.events import DeliveryReport, PhoneMessageRequest
from runtime.templates import spell_code

__all__ = ["CODE_MASK", "json_lines", "log_events", "scrub"]

CODE_MASK = "******"
_DESCRIPTIONS = {
    "gd_send_sms": "MFA SMS Sent",
    "gd_send_sms_failure": "Error Sending MFA SMS",
    "gd_send_voice": "MFA voice call success",
    "gd_send_voice_failure": "MFA voice call failed",
}

# The outbox takes the message like a sender but reaches no phone: its event says so.
_STORED = {
    "sms": "MFA SMS stored, not sent to a phone (outbox)",
    "voice": "MFA voice message stored, not sent to a phone (outbox)",
}


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every occurrence of each secret (the code, credentials) masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, CODE_MASK)
    return text


_KINDS = {
    (channel, ok): f"gd_send_{channel}" + ("" if ok else "_failure")
    for channel in ("sms", "voice")
    for ok in (True, False)
}


def log_events(request: PhoneMessageRequest, report: DeliveryReport) -> list[dict[str, Any]]:
    """The Auth0-shaped log events one report stands for (one dict literal per event: this runs
    for every message, see bench/pipeline.py).

    ``date`` is when the report was made; ``log_id`` is the delivery's id with the event's
    number in place of its last two hex digits (unique, and it points at its delivery).
    """
    client = request.client
    context = request.request
    date = report.created_at  # orjson writes it as ISO 8601 with a Z
    id_stem = report.id[:30]
    path = report.path
    authenticator = {"type": "phone", "phone_number": report.recipient}
    user_id = request.user.get("user_id")
    attempts = report.attempts
    last = attempts[-1] if attempts else None
    events = []
    for number, attempt in enumerate(attempts or (None,)):
        ok = attempt is not None and attempt.outcome == "delivered"
        kind = _KINDS[report.channel, ok]
        details: dict[str, Any] = {
            "delivery_id": report.id,
            "status": report.status,
            "path": path,
            "authenticator": authenticator,
        }
        if attempt is not None:
            details["provider"] = attempt.provider
            details["fallback"] = attempt.fallback
            details["latency_ms"] = round(attempt.latency_ms, 3)
            details["handed_off"] = attempt.handed_off
            if attempt.message_id:
                details["message_id"] = attempt.message_id
            if attempt.outcome == "failed":
                details["provider_error"] = {
                    "errorCode": attempt.error_code,
                    "message": attempt.error,
                }
                details["retryable"] = attempt.retryable
        if attempt is None or (not ok and attempt is last and report.reason):
            details["failure_details"] = {"errorCode": report.reason, "message": report.detail}
        events.append(
            {
                "type": kind,
                "description": _STORED[report.channel]
                if ok and attempt is last and report.status == "stored"
                else _DESCRIPTIONS[kind],
                "date": date,
                "tenant_name": report.tenant,
                "client_id": client.client_id,
                "client_name": client.name,
                "ip": context.ip,
                "user_agent": context.user_agent,
                "user_id": user_id,
                "user_name": report.recipient,
                "details": details,
                "log_id": f"{id_stem}{number:02x}",
            }
        )
    return events


def json_lines(request: PhoneMessageRequest, report: DeliveryReport) -> list[bytes]:
    """The report's log events as JSON lines (each ending in a newline), scrubbed of the code
    in both its forms: the sink counts and retries lines, so they stay separate."""
    secrets = [request.code.encode(), spell_code(request.code).encode()]
    lines = []
    for event in log_events(request, report):
        line = orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z)
        for secret in secrets:
            if secret in line:
                line = line.replace(secret, CODE_MASK.encode())
        lines.append(line)
    return lines
