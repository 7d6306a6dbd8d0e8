"""Log events with Auth0's codes, written as JSON Lines by an ``after_send`` observer.

One event per attempt: ``gd_send_sms`` / ``gd_send_voice`` when it delivered,
``gd_send_sms_failure`` / ``gd_send_voice_failure`` when it failed; a request rejected before
any attempt gets one failure event carrying the reason. The OTP code never appears: message
texts are not logged, and each line is scrubbed of the code as a last guard.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from runtime.events import Attempt, DeliveryReport, PhoneMessageRequest
from runtime.hookspecs import hookimpl
from runtime.ids import new_id
from runtime.templates import spell_code

__all__ = ["CODE_MASK", "JsonLinesLogSink", "log_events", "scrub"]

CODE_MASK = "******"
_DESCRIPTIONS = {
    "gd_send_sms": "MFA SMS Sent",
    "gd_send_sms_failure": "Error Sending MFA SMS",
    "gd_send_voice": "MFA voice call success",
    "gd_send_voice_failure": "MFA voice call failed",
}


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every occurrence of each secret (the code, credentials) masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, CODE_MASK)
    return text


def _event_type(channel: str, ok: bool) -> str:
    return f"gd_send_{channel}" + ("" if ok else "_failure")


def _base(request: PhoneMessageRequest, report: DeliveryReport) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC),  # orjson writes it as ISO 8601 with a Z
        "tenant_name": report.tenant,
        "client_id": request.client.client_id,
        "client_name": request.client.name,
        "ip": request.request.ip,
        "user_agent": request.request.user_agent,
        "user_id": request.user.get("user_id"),
        "user_name": report.recipient,
    }


def _attempt_details(attempt: Attempt) -> dict[str, Any]:
    details: dict[str, Any] = {
        "provider": attempt.provider,
        "fallback": attempt.fallback,
        "latency_ms": round(attempt.latency_ms, 3),
        "handed_off": attempt.handed_off,
    }
    if attempt.message_id:
        details["message_id"] = attempt.message_id
    if attempt.outcome == "failed":
        details["provider_error"] = {"errorCode": attempt.error_code, "message": attempt.error}
        details["retryable"] = attempt.retryable
    return details


def log_events(request: PhoneMessageRequest, report: DeliveryReport) -> list[dict[str, Any]]:
    """The Auth0-shaped log events one report stands for."""
    base = _base(request, report)
    path = report.path
    authenticator = {"type": "phone", "phone_number": report.recipient}
    events = []
    last = report.attempts[-1] if report.attempts else None
    for attempt in report.attempts:
        kind = _event_type(report.channel, attempt.outcome == "delivered")
        details = {
            "delivery_id": report.id,
            "status": report.status,
            "path": path,
            "authenticator": authenticator,
            **_attempt_details(attempt),
        }
        if attempt.outcome == "failed" and attempt is last and report.reason:
            details["failure_details"] = {"errorCode": report.reason, "message": report.detail}
        events.append(
            {
                "type": kind,
                "description": _DESCRIPTIONS[kind],
                **base,
                "details": details,
                "log_id": new_id(),
            }
        )
    if not report.attempts:
        kind = _event_type(report.channel, False)
        details = {
            "delivery_id": report.id,
            "status": report.status,
            "path": path,
            "authenticator": authenticator,
            "failure_details": {"errorCode": report.reason, "message": report.detail},
        }
        events.append(
            {
                "type": kind,
                "description": _DESCRIPTIONS[kind],
                **base,
                "details": details,
                "log_id": new_id(),
            }
        )
    return events


class JsonLinesLogSink:
    """An ``after_send`` plugin appending each log event as one JSON line to ``path``.

    Lines go through a buffer that is flushed at least every ``flush_interval`` seconds (on the
    next write), on :meth:`flush` and on :meth:`close`: a write per report, not a syscall.
    """

    def __init__(self, path: Path, *, flush_interval: float = 1.0) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab", buffering=1 << 16)
        self._lock = threading.Lock()
        self._flush_interval = flush_interval
        self._flushed_at = time.monotonic()

    @hookimpl
    def after_send(self, request: PhoneMessageRequest, report: DeliveryReport) -> None:
        data = b"".join(_lines(request, report))
        with self._lock:
            self._file.write(data)
            now = time.monotonic()
            if now - self._flushed_at >= self._flush_interval:
                self._file.flush()
                self._flushed_at = now

    def flush(self) -> None:
        """Write out everything buffered so far."""
        with self._lock:
            if not self._file.closed:
                self._file.flush()
                self._flushed_at = time.monotonic()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _lines(request: PhoneMessageRequest, report: DeliveryReport) -> list[bytes]:
    """The report's log events as JSON lines, scrubbed of the code in both its forms."""
    secrets = [request.code.encode(), spell_code(request.code).encode()]
    lines = []
    for event in log_events(request, report):
        line = orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z)
        for secret in secrets:
            if secret in line:
                line = line.replace(secret, CODE_MASK.encode())
        lines.append(line)
    return lines
