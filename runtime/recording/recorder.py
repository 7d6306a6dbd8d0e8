"""Writing recordings: captures of one delivery, redacted, appended to the tenant's file.

One file per tenant, per day and per process (``<recordings_dir>/<tenant>/<date>-<pid>.jsonl``)
is one recording, with one :class:`~runtime.recording.redact.Redactor`: the same number gets
the same stand-in throughout the file. A restarted process starts a new file, so stand-ins never
have to survive a restart.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime.events import Attempt, DeliveryReport
from runtime.recording.capture import AttemptCapture, CapturedExchange
from runtime.recording.format import (
    ActionRecord,
    AttemptRecord,
    ExchangeRecord,
    RecordingHeader,
    RequestRecord,
    ResponseRecord,
    ResultRecord,
    encode_body,
)
from runtime.recording.redact import Redactor

__all__ = ["RecordingFile", "RecordingFiles", "attempt_record"]


class RecordingFile:
    """One recording being written: its path, its redactor and its attempt counter."""

    def __init__(self, path: Path, tenant: str | None, *, seed: str | None = None) -> None:
        self.path = path
        self.redactor = Redactor(seed=seed)
        self.count = 0
        self._tenant = tenant

    def write(self, record_for: list[tuple[AttemptCapture, Attempt]]) -> None:
        lines = []
        if self.count == 0 and not self.path.exists():
            header = RecordingHeader(
                created_at=datetime.now(UTC).isoformat(timespec="seconds"), tenant=self._tenant
            )
            lines.append(header.model_dump_json())
        for capture, attempt in record_for:
            self.count += 1
            record = attempt_record(capture, attempt, self.redactor, self.count)
            lines.append(record.model_dump_json(exclude_none=True))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")


class RecordingFiles:
    """The open recordings of this process, one per tenant and day."""

    def __init__(self, *, seed: str | None = None) -> None:
        self._seed = seed
        self._files: dict[Path, RecordingFile] = {}
        self._lock = threading.Lock()

    def write(self, report: DeliveryReport, captures: list[AttemptCapture]) -> None:
        by_path: dict[Path, list[tuple[AttemptCapture, Attempt]]] = {}
        pending = list(captures)
        for attempt in report.attempts:  # an attempt refused before sending has no capture
            capture = next((c for c in pending if c.provider == attempt.provider), None)
            if capture is None:
                continue
            pending.remove(capture)
            if capture.directory is None:
                continue
            tenant = capture.message.tenant
            day = datetime.now(UTC).strftime("%Y-%m-%d")
            path = capture.directory / tenant / f"{day}-{os.getpid()}.jsonl"
            by_path.setdefault(path, []).append((capture, attempt))
        with self._lock:
            for path, pairs in by_path.items():
                file = self._files.get(path)
                if file is None:
                    file = self._files[path] = RecordingFile(
                        path, pairs[0][0].message.tenant, seed=self._seed
                    )
                file.write(pairs)


def attempt_record(
    capture: AttemptCapture, attempt: Attempt, redactor: Redactor, seq: int
) -> AttemptRecord:
    """One attempt as a recording line, every value redacted by ``redactor``."""
    message = capture.message
    redactor.code(message.code)
    redactor.phone(message.recipient)
    secrets = redactor.secrets(capture.credentials, keep=capture.keep)
    event = redactor.data(capture.event) if capture.event is not None else None
    message_data = redactor.data(
        {
            "tenant": message.tenant,
            "recipient": message.recipient,
            "channel": message.channel,
            "purpose": message.purpose,
            "locale": message.locale,
            "code": message.code,
            "text": message.text,
            "user": message.user,
            "client": message.client.model_dump(mode="json", exclude_none=True),
            "request": message.request.model_dump(mode="json", exclude_none=True),
        }
    )
    for exchange in capture.exchanges:  # learn tokens first: a later request may carry them
        _learn_tokens(exchange, redactor)
    exchanges = [_exchange(exchange, redactor) for exchange in capture.exchanges]
    action = None
    if capture.invocation is not None:
        result = capture.invocation
        action = ActionRecord(
            outcome=result.outcome,
            result=redactor.data(result.result),
            error=redactor.text(result.error) if result.error else None,
            logs=[redactor.text(line) for line in result.logs],
            handed_off=result.handed_off,
            notification=redactor.data(result.notification) if result.notification else None,
        )
    return AttemptRecord(
        seq=seq,
        tenant=message.tenant,
        provider=capture.provider,
        fallback=attempt.fallback,
        trigger=capture.trigger,
        event=event,
        message=message_data,
        provider_settings=redactor.data(capture.provider_settings),
        secrets=secrets,
        exchanges=exchanges,
        result=ResultRecord(
            outcome=attempt.outcome,
            error_code=attempt.error_code,
            error=redactor.text(attempt.error) if attempt.error else None,
            handed_off=attempt.handed_off,
            retryable=attempt.retryable,
            message_id=redactor.text(attempt.message_id) if attempt.message_id else None,
        ),
        action=action,
    )


def _learn_tokens(exchange: CapturedExchange, redactor: Redactor) -> None:
    if "json" not in exchange.response_headers.get("content-type", ""):
        return
    try:
        data: Any = json.loads(exchange.response_body)
    except ValueError:
        return
    redactor.data(data)


def _body(body: bytes, redactor: Redactor) -> tuple[str, Any]:
    text, encoding = encode_body(body)
    return (redactor.text(text) if encoding == "text" else text), encoding


def _exchange(exchange: CapturedExchange, redactor: Redactor) -> ExchangeRecord:
    body, encoding = _body(exchange.body, redactor)
    request = RequestRecord(
        method=exchange.method,
        url=redactor.text(exchange.url),
        headers=redactor.headers(exchange.headers),
        body=body,
        body_encoding=encoding,
    )
    response = None
    if exchange.status is not None:
        answer, answer_encoding = _body(exchange.response_body, redactor)
        response = ResponseRecord(
            status=exchange.status,
            headers=redactor.headers(exchange.response_headers),
            body=answer,
            body_encoding=answer_encoding,
        )
    error = exchange.error if response is None else None
    return ExchangeRecord(
        request=request,
        response=response,
        error=error or ("disconnected" if response is None else None),
    )
