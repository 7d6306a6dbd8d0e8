"""What a replay found: each attempt's outcomes, and the differences, each one line.

- ``outcome``, ``handed_off``, ``notification`` (retry/drop and reason), ``result`` (the
  action's return value), ``error``, ``logs``, for actions; ``outcome``, ``error_code``,
  ``handed_off``, ``retryable``, ``message_id`` for provider plugins;
- the sequence of HTTP requests: method, URL and body (JSON and form bodies compared as data,
  without the ``ignore_fields`` that change on every run, such as a random id or a timestamp);
  request headers are not compared (signatures and authorization change with secrets).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.recording.format import (
    ActionRecord,
    AttemptRecord,
    ExchangeRecord,
    ResultRecord,
    body_bytes,
    body_fields,
)
from runtime.recording.replay.cursor import SentRequest
from runtime.sandbox.shared.contract import InvocationResult

__all__ = [
    "EventResult",
    "ReplayReport",
    "action_summary",
    "compare_action",
    "compare_result",
    "result_summary",
]


@dataclass
class EventResult:
    """One recorded attempt replayed: both outcomes and what differs."""

    record: AttemptRecord
    recorded: str
    replayed: str
    differences: list[str]
    requests: list[SentRequest] = field(default_factory=list)
    invocation: InvocationResult | None = None
    result: ResultRecord | None = None

    @property
    def equal(self) -> bool:
        return not self.differences

    @property
    def label(self) -> str:
        message = self.record.message
        return f"#{self.record.seq} {message.get('channel', '?')} {message.get('recipient', '?')}"

    @property
    def logs(self) -> list[str]:
        return list(self.invocation.logs) if self.invocation else []

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.record.seq,
            "event": self.label,
            "recorded": self.recorded,
            "replayed": self.replayed,
            "equal": self.equal,
            "differences": self.differences,
            "requests": [
                {"method": r.method, "url": r.url, "in_recording": r.served} for r in self.requests
            ],
        }


@dataclass
class ReplayReport:
    """Every replayed attempt of a recording, and the attempts left out."""

    source: str
    results: list[EventResult]
    skipped: int = 0

    @property
    def ok(self) -> bool:
        return all(r.equal for r in self.results)

    @property
    def changed(self) -> list[EventResult]:
        return [r for r in self.results if not r.equal]


def action_summary(outcome: str, handed_off: bool, notification: dict[str, str] | None) -> str:
    text = outcome
    if notification:
        text += f" ({notification.get('action', '?')})"
    return text + (", handed off" if handed_off else "")


def result_summary(result: ResultRecord) -> str:
    if result.outcome == "delivered":
        return "delivered"
    return f"failed ({result.error_code})" + (", handed off" if result.handed_off else "")


def _request_differences(
    recorded: Sequence[ExchangeRecord], sent: Sequence[SentRequest], ignore: frozenset[str]
) -> list[str]:
    problems = []
    for i in range(max(len(recorded), len(sent))):
        n = i + 1
        if i >= len(sent):
            was = recorded[i].request
            problems.append(f"request {n}: {was.method} {was.url} was not made")
            continue
        now = sent[i]
        if i >= len(recorded):
            problems.append(f"request {n}: {now.method} {now.url} is not in the recording")
            continue
        was = recorded[i].request
        if not now.served:
            problems.append(
                f"request {n}: {now.method} {now.url} instead of {was.method} {was.url} (not sent)"
            )
            continue
        before = body_fields(
            body_bytes(was), _content_type(was.headers) or now.content_type, ignore
        )
        after = body_fields(now.body, now.content_type, ignore)
        if before != after:
            problems.append(f"request {n}: body {_what_changed(before, after)}")
    return problems


def _content_type(headers: dict[str, str]) -> str:
    return next((v for k, v in headers.items() if k.lower() == "content-type"), "")


def _what_changed(before: Any, after: Any) -> str:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        return "changed: " + ", ".join(map(str, keys))
    return "changed"


def _compare(label: str, before: Any, after: Any, problems: list[str]) -> None:
    if before != after:
        problems.append(f"{label}: {_short(before)} -> {_short(after)}")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compare_action(
    record: AttemptRecord,
    result: InvocationResult,
    requests: Sequence[SentRequest],
    ignore: frozenset[str],
) -> list[str]:
    was = record.action or ActionRecord(outcome="?")
    problems: list[str] = []
    _compare("outcome", was.outcome, result.outcome, problems)
    _compare("handed_off", was.handed_off, result.handed_off, problems)
    _compare("notification", was.notification, result.notification, problems)
    if result.outcome == "ok" or was.outcome == "ok":
        _compare("result", was.result, result.result, problems)
    _compare("error", was.error, result.error, problems)
    if was.logs != result.logs:
        pairs = itertools.zip_longest(was.logs, result.logs)
        line, (before, after) = next(
            (n, pair) for n, pair in enumerate(pairs, 1) if pair[0] != pair[1]
        )
        problems.append(f"logs, line {line}: {_short(before)} -> {_short(after)}")
    problems.extend(_request_differences(record.exchanges, requests, ignore))
    return problems


def compare_result(
    record: AttemptRecord,
    result: ResultRecord,
    requests: Sequence[SentRequest],
    ignore: frozenset[str],
) -> list[str]:
    was = record.result
    problems: list[str] = []
    for name in ("outcome", "error_code", "handed_off", "retryable", "message_id"):
        _compare(name, getattr(was, name), getattr(result, name), problems)
    problems.extend(_request_differences(record.exchanges, requests, ignore))
    return problems
