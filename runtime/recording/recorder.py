"""Writing recordings: captures of one delivery, redacted, appended to the tenant's file.

One file per tenant, per day and per process (``<recordings_dir>/<tenant>/<date>-<pid>.jsonl``)
is one recording, with one :class:`~runtime.recording.redact.Redactor`: the same number gets
the same stand-in throughout the file. A restarted process starts a new file, so stand-ins never
have to survive a restart.

Redaction, serialisation and file writes run on one dedicated thread per
:class:`RecordingFiles`, never on the event loop (an action returning thousands of numbers must
not freeze every tenant) and never on asyncio's default executor (shared with DNS look-ups).
:meth:`RecordingFiles.submit` only queues, and drops (counted, logged) when
``max_pending`` deliveries already wait; each entry is bounded by a
:class:`~runtime.recording.redact.Budget`. The tenant's secrets and the code are masked
(:mod:`runtime.masking`) after the redactor as a last guard: a secret lower-cased in a host
name, or the code spelled as words, is not a stand-in's business but must not be written.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime.events import Attempt, DeliveryReport
from runtime.masking import Masker
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
from runtime.recording.redact import Budget, Redactor

__all__ = ["RecordingFile", "RecordingFiles", "attempt_record"]

log = logging.getLogger(__name__)

_Job = tuple[DeliveryReport, list[AttemptCapture]] | threading.Event


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
    """The open recordings of this process, one per tenant and day, and their writer thread."""

    def __init__(self, *, seed: str | None = None, max_pending: int = 64) -> None:
        self._seed = seed
        self._files: dict[Path, RecordingFile] = {}
        self._lock = threading.Lock()
        self._jobs: queue.Queue[_Job] = queue.Queue(max_pending)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.dropped = 0

    def submit(self, report: DeliveryReport, captures: list[AttemptCapture]) -> bool:
        """Queue one delivery for the writer thread. Never blocks: when ``max_pending``
        deliveries already wait, this one is dropped (counted in :attr:`dropped`, logged)."""
        self._ensure_thread()
        try:
            self._jobs.put_nowait((report, captures))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "recorder behind: %d deliveries not recorded so far (queue of %d full)",
                    self.dropped,
                    self._jobs.maxsize,
                )
            return False
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every delivery submitted so far is written (not from the event loop:
        it blocks). False when ``timeout`` seconds passed first."""
        if self._thread is None:
            return True
        done = threading.Event()
        try:
            self._jobs.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(
                    target=self._run, name="phone-actions-recorder", daemon=True
                )
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if isinstance(job, threading.Event):
                job.set()
                continue
            try:
                self.write(*job)
            except Exception:  # one broken entry (a full disk) must not end the recorder
                log.exception("recording a delivery failed")

    def write(self, report: DeliveryReport, captures: list[AttemptCapture]) -> None:
        """Redact and append now, in this thread (the writer thread calls this)."""
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
    """One attempt as a recording line, every value redacted by ``redactor``, within a fresh
    :class:`Budget`, then masked of the secrets and the code that are still there."""
    message = capture.message
    kept = set(capture.keep)
    redactor.budget = Budget()
    redactor.guard = Masker(
        [value for name, value in capture.credentials.items() if name not in kept], message.code
    )
    try:
        return _attempt_record(capture, attempt, redactor, seq)
    finally:
        redactor.budget = redactor.guard = None


def _attempt_record(
    capture: AttemptCapture, attempt: Attempt, redactor: Redactor, seq: int
) -> AttemptRecord:
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
