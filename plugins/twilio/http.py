"""The SDK's async transport, pointed at one base URL, silent, without retries.

The ``twilio`` SDK builds absolute ``https://api.twilio.com/...`` URLs (after edge and region
rewriting), so tests and proxies can only redirect it at the transport: every ``*.twilio.com``
URL is rewritten to ``base_url``'s scheme and host, keeping Twilio's path and query.

``request`` is reimplemented rather than delegated to the SDK because the SDK's version:

* passes ``timeout=None`` to aiohttp when no timeout is set, which aiohttp 3.14 reads as *no
  timeout at all* (a float becomes ``ClientTimeout(total=t)``, ``None`` disables the session's
  default), and ``create_async`` offers no way to pass one;
* keeps the last request, SMS body and OTP included, on the client (``_test_only_last_request``);
* passes ``auth=`` to aiohttp, deprecated since 3.14.

The per-attempt budget is set with :func:`request_timeout` (a context variable, so concurrent
sends on one pooled client each keep their own budget).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from functools import lru_cache
from typing import Any
from urllib.parse import SplitResult, urlencode, urlsplit, urlunsplit

import aiohttp
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response

from runtime.http import (
    HttpObserver,
    HttpRequest,
    HttpResponse,
    client_timeout,
    form_urlencode,
)
from runtime.observing import current_observer

__all__ = [
    "SILENT_LOGGER",
    "RewritingAsyncHttpClient",
    "client_timeout",
    "request_timeout",
    "rewrite_url",
]

DEFAULT_TIMEOUT = 10.0

_request_timeout: ContextVar[float | None] = ContextVar("twilio_request_timeout", default=None)


class _SilentLogger(logging.Logger):
    """A logger that drops every record, whatever the logging configuration says.

    The SDK logs requests through the logger it is given; a request carries the SMS body, so
    the OTP. This logger is not registered with ``logging``'s manager, so ``dictConfig`` and
    ``logging.disable`` cannot switch it back on.
    """

    def isEnabledFor(self, level: int) -> bool:
        return False

    def handle(self, record: logging.LogRecord) -> None:
        return None


SILENT_LOGGER: logging.Logger = _SilentLogger("plugins.twilio.sdk")
SILENT_LOGGER.disabled = True
SILENT_LOGGER.propagate = False


@lru_cache(maxsize=256)
def _basic_auth(user: str, password: str) -> str:
    return aiohttp.encode_basic_auth(user, password)


@lru_cache(maxsize=1024)  # the SDK builds the same few URLs again and again
def rewrite_url(url: str, base: SplitResult) -> str:
    """``url`` on ``base``'s scheme and host when it points at Twilio, else unchanged."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host == "twilio.com" or host.endswith(".twilio.com"):
        return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, parts.fragment))
    return url


def _form_body(data: dict[str, Any]) -> bytes:
    """The form body of ``data``: string fields by translation tables, lists (``MediaUrl``)
    and other values as ``urlencode(doseq=True)`` writes them; the same bytes either way."""
    if all(type(value) is str for value in data.values()):
        return form_urlencode(data).encode()
    return urlencode(data, doseq=True).encode()


@contextmanager
def request_timeout(seconds: float) -> Iterator[None]:
    """Give every request made inside the block (in this task) ``seconds`` in total."""
    if seconds <= 0:
        raise ValueError("a request timeout must be positive (aiohttp reads 0 as no timeout)")
    token = _request_timeout.set(seconds)
    try:
        yield
    finally:
        _request_timeout.reset(token)


class RewritingAsyncHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """One pooled aiohttp session sending every Twilio request to ``base_url``.

    Create it inside the running event loop (aiohttp binds the session to it). It never
    retries: a retried POST could deliver a second code.
    """

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(
            pool_connections=True, logger=SILENT_LOGGER, max_retries=None, timeout=timeout
        )
        self.base_url = base_url
        self._base = urlsplit(base_url)

    @property
    def closed(self) -> bool:
        session: aiohttp.ClientSession | None = self.session
        return session is None or session.closed

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the SDK's signature)
        allow_redirects: bool = False,
    ) -> Any:
        """Send one request and return the SDK's ``Response``; nothing is logged or kept."""
        session: aiohttp.ClientSession | None = self.session
        if session is None or session.closed:
            raise RuntimeError("the Twilio HTTP client is closed")
        seconds = timeout if timeout is not None else _request_timeout.get()
        all_headers = dict(headers or {})
        if auth is not None:
            all_headers["Authorization"] = _basic_auth(auth[0], auth[1])
        body: bytes | None = None
        if data:
            # The same bytes aiohttp's FormData would produce, without its per-field machinery.
            body = _form_body(data)
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        target = rewrite_url(url, self._base)
        budget = client_timeout(seconds or self.timeout or DEFAULT_TIMEOUT)
        observer = current_observer()  # set by TwilioProvider.send: the SDK's call cannot carry it
        if observer is not None:
            return await self._observed(
                observer,
                session,
                HttpRequest(method.upper(), target, all_headers, body or b""),
                params,
                budget,
                allow_redirects,
            )
        async with session.request(
            method.upper(),
            target,
            params=params,
            data=body,
            headers=all_headers,
            timeout=budget,
            allow_redirects=allow_redirects,
        ) as answer:
            # Twilio answers JSON, which is UTF-8 (RFC 8259): no charset sniffing. "replace":
            # an undecodable error body must still reach the SDK's status check (a refusal),
            # not turn into a decoding error (a possible hand-off).
            text = (await answer.read()).decode("utf-8", "replace")
            return Response(answer.status, text, answer.headers)

    async def _observed(
        self,
        observer: HttpObserver,
        session: aiohttp.ClientSession,
        request: HttpRequest,
        params: dict[str, Any] | None,
        budget: aiohttp.ClientTimeout,
        allow_redirects: bool,
    ) -> Any:
        """The same request seen by the attempt's observer (runtime.observing): a replay
        answers it without the network, a recording keeps the exchange."""
        if params:
            query = urlencode(params, doseq=True)
            request = replace(
                request, url=f"{request.url}{'&' if '?' in request.url else '?'}{query}"
            )
        started = time.perf_counter()
        response: HttpResponse | None = None
        error: BaseException | None = None
        try:
            response = observer.answer(request)
            if response is None:
                async with session.request(
                    request.method,
                    request.url,
                    data=request.body or None,
                    headers=dict(request.headers),
                    timeout=budget,
                    allow_redirects=allow_redirects,
                ) as answer:
                    response = HttpResponse(answer.status, answer.headers, await answer.read())
            return Response(
                response.status, response.body.decode("utf-8", "replace"), response.headers
            )
        except BaseException as exc:
            error = exc
            raise
        finally:
            observer.record(request, response, error, time.perf_counter() - started)
