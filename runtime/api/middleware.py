"""Pure ASGI middleware (no per-request task or body copy): request ids, the body limit and
one access-log line per request.

Request ids: the client's ``X-Request-Id`` when it is short and printable, else a new one;
echoed in the response and put on every log record written while the request runs
(:class:`RequestIdFilter`), so one id finds a request's lines across the service's log.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.api.errors import BodyTooLarge, error_body
from runtime.ids import new_id

__all__ = [
    "MAX_BODY_BYTES",
    "RequestContextMiddleware",
    "RequestIdFilter",
    "current_request_id",
]

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body accepted (1 MiB: an action's 100 kB of code with room to spare)."""

access_log = logging.getLogger("runtime.api.access")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current_request_id() -> str:
    """The id of the request being served ("-" outside a request)."""
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the current request's id, or "-")."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class RequestContextMiddleware:
    """Gives each HTTP request an id, refuses bodies over ``max_body`` bytes with 413 (by
    Content-Length before reading, or while reading a chunked body) and logs one line."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _client_request_id(scope) or new_id()  # uuid4's hex at a third of the cost
        token = _request_id.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = [500]
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body:
                await _too_large(send_with_id, self.max_body)
                return
            await self.app(scope, _limited(receive, self.max_body), send_with_id)
        finally:
            access_log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status[0],
                (time.perf_counter() - started) * 1000,
            )
            _request_id.reset(token)


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def receive_limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return receive_limited


async def _too_large(send: Send, limit: int) -> None:
    import orjson

    body = orjson.dumps(
        error_body(413, f"Request body exceeds the limit of {limit} bytes", "payload_too_large")
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _client_request_id(scope: Scope) -> str | None:
    raw = _header(scope, b"x-request-id")
    if raw is None:
        return None
    text = raw.decode("latin-1")
    return text if _CLIENT_ID.match(text) else None


def _content_length(scope: Scope) -> int | None:
    raw: Any = _header(scope, b"content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None
