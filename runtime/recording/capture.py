"""Per-attempt capture for recordings: what the provider or action saw, sent and got back.

The recorder plugin (``plugins.recorder``, an ``around_attempt`` wrapper) makes an
:class:`AttemptCapture` for each attempt of a tenant that records (tenant field ``record``) and
gives it to the attempt as its HTTP observer; other tenants get none, so their delivery costs
nothing more. The capture is handed on explicitly:

- providers that declare ``accepts_observer`` receive it as ``send(..., observer=capture)``;
  those built on :class:`~runtime.http.PooledHttp` pass it to each request, and the Twilio SDK's
  requests see it through :mod:`runtime.observing`;
- tenant actions: the custom-action provider sets it for the sandbox egress, whose transport
  (:class:`CapturingTransport`) copies each exchange into it, and hands over the trigger event
  and the invocation's result with :meth:`AttemptCapture.note_invocation`.

The recorder writes a delivery's captures, redacted, once its report is known.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import httpx

from runtime.http import HttpRequest, HttpResponse
from runtime.observing import current_observer

if TYPE_CHECKING:
    from runtime.providers import PhoneMessage
    from runtime.sandbox.shared.contract import InvocationResult

__all__ = [
    "AttemptCapture",
    "CapturedExchange",
    "CapturingTransport",
    "InvocationObserver",
    "capturing_transport_factory",
]

MAX_CAPTURED_BODY = 1024 * 1024  # larger answers are passed on but not recorded


@dataclass(slots=True)
class CapturedExchange:
    """One HTTP exchange; ``error`` is ``connect``, ``timeout`` or ``disconnected`` when no
    answer came."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    error: str | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class AttemptCapture:
    """Everything one attempt saw; also the HTTP tap of provider plugins (it never answers)."""

    provider: str
    message: PhoneMessage
    provider_settings: dict[str, Any]
    credentials: dict[str, str] = field(default_factory=dict)
    keep: tuple[str, ...] = ()
    directory: Path | None = None
    exchanges: list[CapturedExchange] = field(default_factory=list)
    trigger: str | None = None
    event: dict[str, Any] | None = None
    invocation: InvocationResult | None = None

    def answer(self, request: HttpRequest) -> HttpResponse | None:
        return None

    def record(
        self,
        request: HttpRequest,
        response: HttpResponse | None,
        error: BaseException | None,
        seconds: float,
    ) -> None:
        exchange = CapturedExchange(
            request.method, request.url, dict(request.headers), request.body, seconds=seconds
        )
        if response is not None:
            exchange.status = response.status
            exchange.response_headers = {k.lower(): v for k, v in response.headers.items()}
            exchange.response_body = response.body
        else:
            exchange.error = _error_kind(error)
        self.exchanges.append(exchange)

    def note_invocation(
        self, trigger: str, event: dict[str, Any], result: InvocationResult
    ) -> None:
        """The action's trigger event and result (the custom-action provider calls this)."""
        self.trigger, self.event, self.invocation = trigger, event, result


@runtime_checkable
class InvocationObserver(Protocol):
    """An observer that also keeps what an action invocation received and returned."""

    def note_invocation(
        self, trigger: str, event: dict[str, Any], result: InvocationResult
    ) -> None: ...


def _error_kind(error: BaseException | None) -> str:
    code = getattr(error, "code", None)
    if code in ("connection_error", "connect_timeout", "configuration_error"):
        return "connect"
    if code in ("timeout", "disconnected"):
        return str(code)
    name = type(error).__name__.lower() if error is not None else ""
    message = str(error).lower() if error is not None else ""
    if "connect" in name or "could not connect" in message:
        return "connect"
    if "timeout" in name or "timed out" in message or "no answer in time" in message:
        return "timeout"
    return "disconnected"


def original_url(request: httpx.Request) -> str:
    """The URL as the action wrote it: the egress pins the IP and keeps the name in Host."""
    host = request.headers.get("host")
    url = request.url
    if not host:
        return str(url)
    target = url.raw_path.decode("ascii", "replace")
    return f"{url.scheme}://{host}{target}"


class CapturingTransport(httpx.AsyncBaseTransport):
    """The sandbox egress's transport: passes every request on, and copies the exchange into
    the attempt's :class:`AttemptCapture` when the custom-action provider set one
    (:mod:`runtime.observing`: the egress is shared by every tenant and takes no observer)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        capture = current_observer()
        if not isinstance(capture, AttemptCapture):
            return await self._inner.handle_async_request(request)
        started = time.perf_counter()
        exchange = CapturedExchange(
            request.method,
            original_url(request),
            {k: v for k, v in request.headers.items() if k.lower() != "host"},
            request.content,
        )
        capture.exchanges.append(exchange)
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException as exc:
            exchange.error = _error_kind(exc)
            exchange.seconds = time.perf_counter() - started
            raise
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_CAPTURED_BODY:
                break
        raw = b"".join(chunks)
        complete = size <= MAX_CAPTURED_BODY
        rest = response if not complete else None
        if complete:
            await response.aclose()
        exchange.status = response.status_code
        exchange.response_headers = {k.lower(): v for k, v in response.headers.items()}
        exchange.response_body = _decoded(raw, exchange.response_headers) if complete else b""
        exchange.seconds = time.perf_counter() - started
        stream = _Replayed(raw, rest)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=stream,
            extensions=response.extensions,
        )


class _Replayed(httpx.AsyncByteStream):
    """The bytes already read, then (for a body too large to record) the rest of it."""

    def __init__(self, head: bytes, rest: httpx.Response | None) -> None:
        self._head = head
        self._rest = rest

    async def __aiter__(self) -> Any:
        yield self._head
        if self._rest is not None:
            async for chunk in self._rest.aiter_raw():
                yield chunk

    async def aclose(self) -> None:
        if self._rest is not None:
            await self._rest.aclose()


def _decoded(raw: bytes, headers: dict[str, str]) -> bytes:
    """The body as the action reads it (gzip/deflate undone, within the cap)."""
    import zlib

    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:
            inflater = zlib.decompressobj(
                16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
            )
            body = inflater.decompress(raw, MAX_CAPTURED_BODY)
        except zlib.error:
            return b""
        headers.pop("content-encoding", None)
        return body
    return raw


def capturing_transport_factory(
    max_connections: int = 4,
) -> Callable[[], httpx.AsyncBaseTransport]:
    """A transport factory for :class:`~runtime.sandbox.host.egress.Egress`: the egress's own
    default transport (verified TLS, no proxies from the environment, small pools), wrapped in
    :class:`CapturingTransport`."""
    context: list[ssl.SSLContext] = []

    def factory() -> httpx.AsyncBaseTransport:
        if not context:
            context.append(httpx.create_ssl_context(trust_env=False))
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        inner = httpx.AsyncHTTPTransport(verify=context[0], trust_env=False, limits=limits)
        return CapturingTransport(inner)

    return factory
