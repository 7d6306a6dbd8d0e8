"""Replaying a recording against a tenant action or a provider plugin, offline.

Each recorded attempt is run again: an action in the real sandbox (the recorded trigger event,
the stand-in secrets, the tenant's own warm worker, the real egress checks), a provider plugin
through its real ``send``. Their HTTP is answered from the recorded exchanges, in order, and
never reaches the network: the egress gets a resolver that answers one fixed address and a
transport that answers from the recording; a provider plugin gets an HTTP tap that answers
instead of its session. A request that differs from the recorded one at the same position
(method or URL) is a *divergence*: it is not sent, and the action sees a connection error.

Then the new outcome is compared with the recorded one. The differences, each one line:

- ``outcome``, ``handed_off``, ``notification`` (retry/drop and reason), ``result`` (the
  action's return value), ``error``, ``logs``, for actions; ``outcome``, ``error_code``,
  ``handed_off``, ``retryable``, ``message_id`` for provider plugins;
- the sequence of HTTP requests: method, URL and body (JSON and form bodies compared as data,
  without the ``ignore_fields`` that change on every run, such as a random id or a timestamp);
  request headers are not compared (signatures and authorization change with secrets).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from runtime.errors import ProviderError
from runtime.http import HttpRequest, HttpResponse, tap_http
from runtime.providers import PhoneMessage, Provider
from runtime.recording.format import (
    ActionRecord,
    AttemptRecord,
    ExchangeRecord,
    Recording,
    ResultRecord,
    body_bytes,
    body_fields,
)
from runtime.sandbox.egress import EgressPolicy
from runtime.sandbox.runner import SandboxRunner
from runtime.sandbox.types import InvocationResult, SandboxLimits, Trigger

__all__ = [
    "ActionReplayer",
    "EventResult",
    "ProviderReplayer",
    "ReplayReport",
    "in_order",
    "replay_recording",
]

REPLAY_ADDRESS = "93.184.215.14"  # any public address: the replay transport never connects
_UNLIMITED = 10**9


@dataclass(slots=True)
class SentRequest:
    """A request the replayed code made (whether or not the recording had it)."""

    method: str
    url: str
    body: bytes
    content_type: str
    served: bool


class _Cursor:
    """Answers the requests of one replayed attempt from its recorded exchanges, in order."""

    def __init__(self, exchanges: Sequence[ExchangeRecord]) -> None:
        self.exchanges = exchanges
        self.sent: list[SentRequest] = []

    def next(self, method: str, url: str, body: bytes, content_type: str) -> ExchangeRecord | None:
        """The recorded exchange for this request, or None (a divergence: do not send)."""
        index = len(self.sent)
        expected = self.exchanges[index] if index < len(self.exchanges) else None
        served = (
            expected is not None
            and expected.request.method == method
            and _same_url(expected.request.url, url)
        )
        self.sent.append(SentRequest(method, url, body, content_type, served))
        return expected if served else None


_CURSOR: ContextVar[_Cursor | None] = ContextVar("phone_actions_replay_cursor", default=None)


def _same_url(recorded: str, sent: str) -> bool:
    if recorded == sent:
        return True
    a, b = urlsplit(recorded), urlsplit(sent)
    port = {"http": 80, "https": 443}
    return (a.scheme, a.hostname, a.port or port.get(a.scheme), a.path or "/", a.query) == (
        b.scheme,
        b.hostname,
        b.port or port.get(b.scheme),
        b.path or "/",
        b.query,
    )


class ReplayTransport(httpx.AsyncBaseTransport):
    """The egress transport of a replay: answers from the current cursor, sends nothing."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        from runtime.recording.capture import original_url

        cursor = _CURSOR.get()
        url = original_url(request)
        body = await request.aread()
        content_type = request.headers.get("content-type", "")
        exchange = cursor.next(request.method, url, body, content_type) if cursor else None
        if exchange is None:
            raise httpx.ConnectError("not in the recording: not sent", request=request)
        if exchange.response is None:
            if exchange.error == "timeout":
                raise httpx.ReadTimeout("timed out (as recorded)", request=request)
            if exchange.error == "connect":
                raise httpx.ConnectError("could not connect (as recorded)", request=request)
            raise httpx.RemoteProtocolError("disconnected (as recorded)", request=request)
        answer = exchange.response
        headers = {k: v for k, v in answer.headers.items() if k not in _HOP_HEADERS}
        return httpx.Response(answer.status, headers=headers, content=body_bytes(answer))


_HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding", "connection"})


async def _fixed_resolver(host: str, port: int) -> list[str]:
    return [REPLAY_ADDRESS]


class _ReplayTap:
    """The HTTP tap of a provider plugin's replay: answers from the cursor, never sends."""

    def __init__(self, cursor: _Cursor, label: str) -> None:
        self._cursor = cursor
        self._label = label

    def answer(self, request: HttpRequest) -> HttpResponse | None:
        content_type = next(
            (v for k, v in request.headers.items() if k.lower() == "content-type"), ""
        )
        exchange = self._cursor.next(request.method, request.url, request.body, content_type)
        if exchange is None:
            raise ProviderError(
                "replay_divergence",
                f"{request.method} {request.url} is not in the recording: not sent",
                retryable=False,
                handed_off=False,
            )
        if exchange.response is None:
            label = self._label
            if exchange.error == "connect":
                raise ProviderError(
                    "connection_error",
                    f"could not connect to {label}",
                    retryable=True,
                    handed_off=False,
                )
            code = exchange.error or "disconnected"
            raise ProviderError(
                code, f"{code} (as recorded) to {label}", retryable=True, handed_off=True
            )
        answer = exchange.response
        return HttpResponse(answer.status, dict(answer.headers), body_bytes(answer))

    def record(
        self,
        request: HttpRequest,
        response: HttpResponse | None,
        error: BaseException | None,
        seconds: float,
    ) -> None:
        return None


# -- results and differences -------------------------------------------------------------------


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


def _action_summary(outcome: str, handed_off: bool, notification: dict[str, str] | None) -> str:
    text = outcome
    if notification:
        text += f" ({notification.get('action', '?')})"
    return text + (", handed off" if handed_off else "")


def _result_summary(result: ResultRecord) -> str:
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


# -- replayers -----------------------------------------------------------------------------


class ActionReplayer:
    """Replays recorded attempts against an action script, in one sandbox with up to
    ``concurrency`` warm workers per tenant. Use as an async context manager.

    One worker (the default) replays the events in order in one warm worker, as they ran: an
    action that keeps state between invocations (a cached OAuth token) behaves as recorded.
    More workers are faster but only faithful for actions that keep nothing: a new worker's
    first event starts cold (it fetches the token again: a divergence).
    """

    def __init__(
        self,
        *,
        limits: SandboxLimits | None = None,
        allow_http_hosts: Iterable[str] = (),
        ignore_fields: Iterable[str] = (),
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.ignore = frozenset(ignore_fields)
        self.concurrency = concurrency
        self.runner = SandboxRunner(
            limits=limits,
            policy=EgressPolicy(
                allow_http_hosts=frozenset(allow_http_hosts),
                max_requests_per_tenant_per_minute=_UNLIMITED,
            ),
            max_workers=max(8, concurrency),
            max_workers_per_tenant=concurrency,
            resolver=_fixed_resolver,
            transport_factory=ReplayTransport,
        )

    async def __aenter__(self) -> ActionReplayer:
        await self.runner.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.runner.aclose()

    async def replay(
        self,
        record: AttemptRecord,
        source: str | bytes,
        *,
        name: str = "action",
        trigger: Trigger | None = None,
        ignore: frozenset[str] | None = None,
    ) -> EventResult:
        chosen = trigger or record.trigger
        if record.event is None or chosen not in ("send-phone-message", "custom-phone-provider"):
            raise ValueError(f"attempt {record.seq} has no trigger event to replay")
        cursor = _Cursor(record.exchanges)
        token = _CURSOR.set(cursor)
        try:
            result = await self.runner.run(
                tenant=record.tenant,
                name=name,
                source=source,
                trigger=chosen,  # type: ignore[arg-type]
                event=record.event,
                secrets=record.secrets,
            )
        finally:
            _CURSOR.reset(token)
        was = record.action or ActionRecord(outcome="?")
        differences = compare_action(
            record, result, cursor.sent, self.ignore if ignore is None else ignore
        )
        return EventResult(
            record=record,
            recorded=_action_summary(was.outcome, was.handed_off, was.notification),
            replayed=_action_summary(result.outcome, result.handed_off, result.notification),
            differences=differences,
            requests=cursor.sent,
            invocation=result,
        )


class ProviderReplayer:
    """Replays recorded attempts against a provider plugin's ``send``."""

    def __init__(
        self, provider: Provider, *, ignore_fields: Iterable[str] = (), timeout: float = 10.0
    ) -> None:
        self.provider = provider
        self.ignore = frozenset(ignore_fields)
        self.timeout = timeout
        self._ids = itertools.count(1)

    async def replay(
        self, record: AttemptRecord, ignore: frozenset[str] | None = None
    ) -> EventResult:
        cursor = _Cursor(record.exchanges)
        message = _message(record, next(self._ids), self.timeout)
        label = getattr(getattr(self.provider, "http", None), "label", self.provider.name)
        result: ResultRecord
        try:
            config = self.provider.config_model.model_validate(record.provider_settings)
            credentials = self.provider.credentials_model.model_validate(record.secrets)
            with tap_http(_ReplayTap(cursor, str(label))):
                receipt = await self.provider.send(message, config, credentials)
            result = ResultRecord(outcome="delivered", message_id=receipt.message_id)
        except ProviderError as exc:
            result = ResultRecord(
                outcome="failed",
                error_code=exc.code,
                error=exc.message,
                handed_off=exc.handed_off,
                retryable=exc.retryable,
            )
        except Exception as exc:
            result = ResultRecord(
                outcome="failed",
                error_code="provider_crashed",
                error=f"{type(exc).__name__}: {exc}",
                handed_off=True,
                retryable=False,
            )
        differences = compare_result(
            record, result, cursor.sent, self.ignore if ignore is None else ignore
        )
        return EventResult(
            record=record,
            recorded=_result_summary(record.result),
            replayed=_result_summary(result),
            differences=differences,
            requests=cursor.sent,
            result=result,
        )


def _message(record: AttemptRecord, number: int, timeout: float) -> PhoneMessage:
    from runtime.events import ClientInfo, RequestContext

    data = record.message
    return PhoneMessage(
        id=f"replay-{record.seq}-{number}",
        tenant=str(data.get("tenant") or record.tenant),
        recipient=str(data["recipient"]),
        channel=data.get("channel", "sms"),
        purpose=data.get("purpose", "verification"),
        locale=str(data.get("locale") or "en"),
        code=str(data.get("code") or ""),
        text=str(data.get("text") or ""),
        timeout=timeout,
        user=dict(data.get("user") or {}),
        client=ClientInfo.model_validate(data.get("client") or {}),
        request=RequestContext.model_validate(data.get("request") or {}),
    )


def http_hosts(recording: Recording) -> set[str]:
    """``host:port`` of every plain-http URL in the recording (the egress must allow them)."""
    hosts = set()
    for attempt in recording.attempts:
        for exchange in attempt.exchanges:
            parts = urlsplit(exchange.request.url)
            if parts.scheme == "http" and parts.hostname:
                hosts.add(f"{parts.hostname}:{parts.port or 80}")
    return hosts


async def replay_recording(
    recording: Recording,
    *,
    action: Path | None = None,
    action_source: str | bytes | None = None,
    provider: Provider | None = None,
    ignore_fields: Iterable[str] = (),
    limits: SandboxLimits | None = None,
    progress: Callable[[int], None] | None = None,
    attempt_timeout: float = 10.0,
    concurrency: int = 1,
) -> ReplayReport:
    """Replay every suitable attempt of ``recording`` against an action or a provider.

    Actions replay ``concurrency`` events at once, each in its own warm worker (see
    :class:`ActionReplayer` for when more than one is faithful); the report keeps the
    recording's order. Provider plugins replay one at a time.
    """
    ignore = frozenset([*recording.header.ignore_fields, *ignore_fields])
    if provider is not None:
        results: list[EventResult] = []
        skipped = 0
        replayer = ProviderReplayer(provider, ignore_fields=ignore, timeout=attempt_timeout)
        for record in recording.attempts:
            if record.provider != provider.name:
                skipped += 1
            else:
                results.append(await replayer.replay(record))
            if progress:
                progress(1)
        return ReplayReport(recording.path, results, skipped)
    if action_source is None:
        if action is None:
            raise ValueError("replay an action or a provider")
        action_source = await asyncio.to_thread(action.read_bytes)
    name = action.stem if action is not None else "action"
    source = action_source  # narrowed to a value, for the closure below
    runnable = [r for r in recording.attempts if r.event is not None and r.trigger is not None]
    skipped = len(recording.attempts) - len(runnable)
    if progress and skipped:
        progress(skipped)
    async with ActionReplayer(
        limits=limits,
        allow_http_hosts=http_hosts(recording),
        ignore_fields=ignore,
        concurrency=concurrency,
    ) as sandbox:

        async def replay_one(record: AttemptRecord) -> EventResult:
            result = await sandbox.replay(record, source, name=name)
            if progress:
                progress(1)
            return result

        replayed = await in_order(replay_one, runnable, concurrency)
    return ReplayReport(recording.path, replayed, skipped)


async def in_order(
    run: Callable[[AttemptRecord], Awaitable[EventResult]],
    records: Sequence[AttemptRecord],
    jobs: int,
) -> list[EventResult]:
    """``run`` over ``records`` with at most ``jobs`` at once; results in the records' order."""
    results: list[EventResult | None] = [None] * len(records)
    positions = iter(range(len(records)))

    async def lane() -> None:
        for position in positions:
            results[position] = await run(records[position])

    async with asyncio.TaskGroup() as group:  # one failing lane cancels the others
        for _ in range(min(jobs, len(records))):
            group.create_task(lane())
    return [r for r in results if r is not None]
