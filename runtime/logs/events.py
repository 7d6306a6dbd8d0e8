"""Log events with Auth0's codes, and the JSON lines the sink writes for them.

One event per attempt: ``gd_send_sms`` / ``gd_send_voice`` when it delivered,
``gd_send_sms_failure`` / ``gd_send_voice_failure`` when it failed; a request rejected before
any attempt gets one failure event carrying the reason. The OTP code never appears: message
texts are not logged, and each line is scrubbed of the code as a last guard, in every string
but the identifiers that tie an event to its delivery, user and phone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from runtime.events import Attempt, DeliveryReport, PhoneMessageRequest
from runtime.ids import new_id
from runtime.policy.log_events import limit_events
from runtime.templates import spell_code

__all__ = [
    "CODE_MASK",
    "OTP_DESCRIPTIONS",
    "event_lines",
    "json_lines",
    "log_events",
    "otp_event",
    "scrub",
]

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


def log_events(
    request: PhoneMessageRequest, report: DeliveryReport, since: int = 0
) -> list[dict[str, Any]]:
    """The Auth0-shaped log events one report stands for (one dict literal per event: this runs
    for every message, see bench/pipeline.py).

    ``date`` is when the report was made; ``log_id`` is the delivery's id with the event's
    number in place of its last two hex digits (unique, and it points at its delivery): an
    attempt's place in ``attempts``. One event per attempt, once: a delivery its action
    retries logs its first attempts with the ``retrying`` report (``since`` of them), and the
    final report only the attempts after those (a failure alert counting
    ``gd_send_*_failure`` events counts each failed attempt once). A final report with no
    attempt of its own (a retry interrupted, a tenant gone) logs one event for its outcome,
    numbered after the attempts.
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
    numbered: list[tuple[int, Attempt | None]] = [
        (place, attempt) for place, attempt in enumerate(attempts) if place >= since
    ] or [(max(since, len(attempts)), None)]
    for number, attempt in numbered:
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
    if report.reason == "rate_limited":  # limit_phone, gd_otp_rate_limit_exceed
        return limit_events(report, events[0])
    return events


def json_lines(request: PhoneMessageRequest, report: DeliveryReport, since: int = 0) -> list[bytes]:
    """The report's log events (:func:`log_events`) as JSON lines (each ending in a newline),
    scrubbed of the code in both its forms: the sink counts and retries lines, so they stay
    separate."""
    secrets = [request.code, spell_code(request.code)]
    return event_lines(log_events(request, report, since), secrets)


# Identifiers that tie an event to its report, its user and its phone: a code found in one is
# a coincidence (a hex id holding ``123456``), and masking it would break that tie. Every other
# string is scrubbed: provider errors, failure details, the caller's context, and message ids
# (one may come from a tenant's action or a third-party plugin).
_KEPT_AS_IS = frozenset(
    {"delivery_id", "log_id", "tenant_name", "user_id", "client_id", "user_name", "phone_number"}
)
_DUMP_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z


def _scrubbed(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, dict):
        return {
            key: item if key in _KEPT_AS_IS else _scrubbed(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrubbed(item, secrets) for item in value]
    return value


def _event_line(event: dict[str, Any], secrets: list[str]) -> bytes:
    line = orjson.dumps(event, option=_DUMP_OPTIONS)
    # Most lines hold no secret at all: one byte search each, and the walk only when one does.
    if any(secret and secret.encode() in line for secret in secrets):
        line = orjson.dumps(_scrubbed(event, secrets), option=_DUMP_OPTIONS)
    return line


# -- events that are not one delivery's: the Verify API's (runtime/otp) ------------------------

OTP_DESCRIPTIONS = {
    "gd_start_enroll": "MFA enroll started",
    "gd_enrollment_complete": "MFA enrollment complete",
    "gd_start_auth": "Second factor started",
    "gd_auth_succeed": "Second factor authentication success",
    "gd_auth_failed": "Second factor authentication failed",
}


def otp_event(
    kind: str,
    *,
    tenant: str,
    user_id: str,
    phone_number: str,
    client_id: str | None,
    client_name: str | None,
    ip: str | None,
    user_agent: str | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    """One Verify API event (``gd_start_enroll``...) in the shape of the delivery events, so
    the same log readers take both. ``details`` never carries a code."""
    return {
        "type": kind,
        "description": OTP_DESCRIPTIONS[kind],
        "date": datetime.now(UTC),
        "tenant_name": tenant,
        "client_id": client_id,
        "client_name": client_name,
        "ip": ip,
        "user_agent": user_agent,
        "user_id": user_id,
        "user_name": phone_number,
        "details": {
            "authenticator": {"type": "phone", "phone_number": phone_number},
            **details,
        },
        "log_id": new_id(),
    }


def event_lines(events: list[dict[str, Any]], secrets: list[str]) -> list[bytes]:
    """``events`` as JSON lines for :meth:`JsonLinesLogSink.write_lines`, each scrubbed of
    ``secrets`` (the code, a code the caller sent: never logged, even when wrong) in every
    string but the identifiers that tie it to its delivery, user and phone."""
    return [_event_line(event, secrets) for event in events]
