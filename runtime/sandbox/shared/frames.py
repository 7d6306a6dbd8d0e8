"""Length-prefixed JSON frames between the supervisor and its workers.

A frame is a 4-byte big-endian length followed by one JSON object with a ``"type"`` member.
JSON (never pickle) because the worker is untrusted once tenant code has run: the supervisor
must be able to read anything a compromised worker sends without executing it. Frames from a
worker are capped (``MAX_FRAME_FROM_WORKER``); the supervisor kills a worker that exceeds it.

Messages (``id`` is the invocation id):

* supervisor → worker: ``bind {tenant, uid}`` (written together with the first ``invoke``),
  ``invoke {id, tenant, name, digest, [source | source_b64], trigger, event, limits}``,
  ``rpc_response {id, ok, value | error}`` and, in test pools only, ``probe {id, tenant, target,
  args}``;
* worker → supervisor: ``ready {seccomp, detail}`` once after the limits are applied,
  ``rpc_request {id, op, params}``, ``result {id, result, retire}``, ``probe_result {id, ok,
  value | error}``.

The worker side is blocking (:class:`BlockingChannel`); the supervisor side is an asyncio
protocol (:class:`runtime.sandbox.host.frame_protocol.FrameProtocol`) so that one event loop
serves many workers. This module imports no asyncio: the zygote preloads it, and every module
it holds is memory each worker's fork copies page tables for and its exit unmaps.

An ``invoke`` carries the sha256 ``digest`` of the action's source, and the source itself only
when the worker does not hold it yet: each worker keeps the last ``SOURCE_CACHE_SIZE`` sources
it was sent (first in, first out) and the supervisor mirrors that set per worker
(:class:`SourceDigests`), so a warm invocation sends no source. A worker asked for a digest it
does not hold exits (the mirror would be wrong: fail closed, the worker is recycled).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import socket
import struct
from collections import OrderedDict
from typing import Any, Final
from urllib.parse import urlsplit

import orjson
from pydantic import ValidationError

from runtime.sandbox.shared.contract import HttpCall, InvocationResult, SandboxLimits

__all__ = [
    "MAX_FRAME_FROM_WORKER",
    "MAX_FRAME_TO_WORKER",
    "SOURCE_CACHE_SIZE",
    "BlockingChannel",
    "ConnectionClosed",
    "FrameTooLarge",
    "InvokeFrame",
    "ProtocolError",
    "SourceDigests",
    "WorkerSources",
    "checked_result",
    "decode_body",
    "encode_frame",
    "expect_int",
    "expect_str",
    "http_call",
    "source_digest",
]

HEADER: Final = struct.Struct(">I")
MAX_FRAME_FROM_WORKER: Final = 2 * 1024 * 1024
"""Result plus logs fit well below this (256 KiB result, 64 KiB output, 200 log lines)."""
MAX_FRAME_TO_WORKER: Final = 16 * 1024 * 1024
"""Larger: an HTTP answer of 1 MiB travels as text *and* parsed JSON, with JSON escaping."""


class ProtocolError(Exception):
    """A frame that is not one JSON object with a string ``type``."""


class FrameTooLarge(ProtocolError):
    """A frame over the size cap (the peer is killed and the invocation is ``output_limit``)."""


class ConnectionClosed(Exception):
    """The peer closed the socket (for a worker: it died)."""


def _dump(message: dict[str, Any]) -> bytes:
    """Both ends use orjson, so what one end writes the other reads the same way: integers
    beyond 64 bits are refused (``TypeError``) rather than written for a reader that differs."""
    return orjson.dumps(message)


def encode_frame(message: dict[str, Any], *, max_size: int) -> bytes:
    """Serialise ``message`` as one frame; raises ``FrameTooLarge``, ``TypeError`` or
    ``ValueError`` (not JSON) before anything is sent."""
    body = _dump(message)
    if len(body) > max_size:
        raise FrameTooLarge(f"frame of {len(body)} bytes exceeds {max_size}")
    return HEADER.pack(len(body)) + body


SOURCE_CACHE_SIZE: Final = 8
"""Sources a worker holds by digest; a tenant rarely has more than a few actions."""


def source_digest(raw: bytes) -> str:
    """The digest both ends name a source by: sha256 of its UTF-8 bytes, in hex."""
    return hashlib.sha256(raw).hexdigest()


class SourceDigests:
    """The digests of the sources one worker holds, in the order it received them.

    The worker keeps the same ``size`` sources first in, first out (:class:`WorkerSources`);
    both sides add a digest exactly when a source travels, so the two sets stay equal.
    """

    __slots__ = ("_digests", "_size")

    def __init__(self, size: int = SOURCE_CACHE_SIZE) -> None:
        self._size = size
        self._digests: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, digest: object) -> bool:
        return digest in self._digests

    def add(self, digest: str) -> None:
        """Record that ``digest`` was sent; the oldest one beyond ``size`` is forgotten."""
        if digest not in self._digests:
            self._digests[digest] = None
            if len(self._digests) > self._size:
                self._digests.popitem(last=False)


class WorkerSources(SourceDigests):
    """The worker's side of :class:`SourceDigests`: the sources themselves, by digest."""

    __slots__ = ("_sources",)

    def __init__(self, size: int = SOURCE_CACHE_SIZE) -> None:
        super().__init__(size)
        self._sources: dict[str, str | bytes] = {}

    def remember(self, digest: str, source: str | bytes) -> None:
        self.add(digest)
        self._sources[digest] = source
        for gone in [d for d in self._sources if d not in self._digests]:
            del self._sources[gone]

    def get(self, digest: str) -> str | bytes | None:
        return self._sources.get(digest)


@functools.lru_cache(maxsize=32)
def _encoded_source(source: str | bytes) -> tuple[str, orjson.Fragment, str, int]:
    """``(digest, the source as JSON, its key, that JSON's size)``, cached: the same action runs
    again and again, and re-hashing or re-escaping a 64 KiB source each time would cost the
    event loop."""
    if isinstance(source, bytes):
        raw, key, text = source, "source_b64", base64.b64encode(source).decode()
    elif isinstance(source, str):
        raw, key, text = source.encode("utf-8", "surrogatepass"), "source", source
    else:
        raise TypeError(f"source must be str or bytes, not {type(source).__name__}")
    encoded = orjson.dumps(text)
    return source_digest(raw), orjson.Fragment(encoded), key, len(encoded)


@functools.lru_cache(maxsize=16)
def _encoded_limits(limits: SandboxLimits) -> tuple[orjson.Fragment, int]:
    encoded = orjson.dumps(limits.model_dump())
    return orjson.Fragment(encoded), len(encoded)


class InvokeFrame:
    """An ``invoke`` message, encoded before a worker is chosen (bad input fails before any
    worker is taken) and finished for the worker it goes to: with the source only when that
    worker does not hold it (:meth:`for_worker`)."""

    __slots__ = ("_event", "_head", "_limits", "_source", "_source_key", "digest")

    def __init__(
        self,
        invocation: int,
        tenant: str,
        name: str,
        source: str | bytes,
        trigger: str,
        event: dict[str, Any],
        limits: SandboxLimits,
        *,
        check: bool = False,
    ) -> None:
        self.digest, self._source, self._source_key, source_size = _encoded_source(source)
        self._head = {"type": "invoke", "id": invocation, "tenant": tenant, "name": name}
        self._head |= {"trigger": trigger, "digest": self.digest}
        if check:  # compile only: the worker runs none of the script (SandboxRunner.check)
            self._head["check"] = True
        event_json = _dump(event)
        self._event = orjson.Fragment(event_json)
        self._limits, limits_size = _encoded_limits(limits)
        size = len(_dump(self._head)) + source_size + len(event_json) + limits_size + 64  # keys
        if size > MAX_FRAME_TO_WORKER:  # checked here, so that for_worker cannot fail
            raise FrameTooLarge(f"frame of {size} bytes exceeds {MAX_FRAME_TO_WORKER}")

    def for_worker(self, held: SourceDigests) -> bytes:
        """The frame for a worker holding ``held``, which then records the source as sent."""
        message = {**self._head, "event": self._event, "limits": self._limits}
        if self.digest not in held:
            message[self._source_key] = self._source
            held.add(self.digest)
        return encode_frame(message, max_size=MAX_FRAME_TO_WORKER)


def decode_body(body: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Parse one frame body; anything but a JSON object with a string ``type`` is an error."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"malformed frame: {exc}") from None
    if type(message) is not dict or type(message.get("type")) is not str:
        raise ProtocolError("frame is not an object with a string type")
    return message


def expect_int(message: dict[str, Any], key: str) -> int:
    """``message[key]`` if it is a plain int, else ``ProtocolError``."""
    value = message.get(key)
    if type(value) is not int:
        raise ProtocolError(f"{message['type']}.{key} must be an integer")
    return value


def expect_str(message: dict[str, Any], key: str, *, max_len: int = 1 << 20) -> str:
    """``message[key]`` if it is a plain str no longer than ``max_len``, else ``ProtocolError``."""
    value = message.get(key)
    if type(value) is not str or len(value) > max_len:
        raise ProtocolError(f"{message['type']}.{key} must be a string of at most {max_len}")
    return value


class BlockingChannel:
    """The worker's end: blocking send and receive of whole frames over a stream socket."""

    def __init__(self, sock: socket.socket, *, max_recv: int = MAX_FRAME_TO_WORKER) -> None:
        sock.setblocking(True)
        self._sock = sock
        self._max_recv = max_recv
        self._buf = bytearray()

    def send(self, message: dict[str, Any], *, max_size: int = MAX_FRAME_FROM_WORKER) -> None:
        """Send one frame; ``FrameTooLarge``/``TypeError``/``ValueError`` if it cannot be."""
        self.send_frame(encode_frame(message, max_size=max_size))

    def send_frame(self, frame: bytes) -> None:
        """Send an already encoded frame (see :func:`encode_frame`)."""
        self._sock.sendall(frame)

    def recv(self) -> dict[str, Any] | None:
        """The next frame, or ``None`` on a clean end of stream between frames."""
        if not self._fill(HEADER.size):
            return None
        (size,) = HEADER.unpack_from(self._buf)
        if size > self._max_recv:
            raise FrameTooLarge(f"frame of {size} bytes exceeds {self._max_recv}")
        if not self._fill(HEADER.size + size):
            raise ConnectionClosed("end of stream inside a frame")
        body = bytes(self._buf[HEADER.size : HEADER.size + size])
        del self._buf[: HEADER.size + size]
        return decode_body(body)

    def _fill(self, wanted: int) -> bool:
        while len(self._buf) < wanted:
            chunk = self._sock.recv(max(65536, wanted - len(self._buf)))
            if not chunk:
                if self._buf:
                    raise ConnectionClosed("end of stream inside a frame")
                return False
            self._buf += chunk
        return True

    def close(self) -> None:
        self._sock.close()


# ---------------------------------------------------------------- reading a worker's result

_MAX_ERROR: Final = 4096
_MAX_TRACEBACK_LINES: Final = 64
_MAX_LINE: Final = 1024


def _cap(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text
    return data[: max(max_bytes - 3, 0)].decode("utf-8", "ignore") + "…"


def _cap_logs(lines: list[str], limits: SandboxLimits) -> list[str]:
    kept: list[str] = []
    total = 0
    for line in lines[: limits.max_log_lines]:
        line = _cap(line, limits.max_log_line_bytes)
        total += len(line.encode("utf-8", "replace")) + 1
        if total > limits.max_output_bytes:
            break
        kept.append(line)
    return kept


def checked_result(
    raw: Any, limits: SandboxLimits, http: list[HttpCall], handed_off: bool
) -> InvocationResult:
    """Re-validate a worker's result and cap it again; ``http``/``handed_off`` are the
    supervisor's own record (the worker's claims are dropped)."""
    if type(raw) is not dict:
        raise ProtocolError("result must be an object")
    try:
        result = InvocationResult.model_validate(raw)
    except ValidationError as exc:
        raise ProtocolError(f"invalid result: {exc.error_count()} errors") from None
    notification = result.notification
    if notification is not None:
        items = list(notification.items())[:8]
        notification = {_cap(k, 64): _cap(v, _MAX_LINE) for k, v in items}
    update: dict[str, Any] = {
        "logs": _cap_logs(result.logs, limits),
        "error": None if result.error is None else _cap(result.error, _MAX_ERROR),
        "traceback": [_cap(line, _MAX_LINE) for line in result.traceback[:_MAX_TRACEBACK_LINES]],
        "compile_errors": [
            issue.model_copy(update={"message": _cap(issue.message, _MAX_LINE)})
            for issue in result.compile_errors[:50]
        ],
        "notification": notification,
        "http": http,
        "handed_off": handed_off,
        "duration_ms": 0.0,
    }
    if result.outcome == "ok" and len(_dump({"r": result.result})) > limits.max_result_bytes + 6:
        update |= {
            "outcome": "output_limit",
            "result": None,
            "error": f"result exceeds {limits.max_result_bytes} bytes",
        }
    return result.model_copy(update=update)


_MAX_URL_READ = 4096


def _redact_url(url: str) -> str:
    """Scheme, host, port and path only: queries and userinfo often carry credentials. Read
    within its first 4,096 characters: the record keeps 2,048, the egress refuses a URL past
    2,048, and parsing the rest (a frame may hold ~2 MB) cost the supervisor's loop 10-25 ms
    a call (red team)."""
    try:
        parts = urlsplit(url[:_MAX_URL_READ])
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "<invalid url>"
    query = "?…" if parts.query else ""
    return _cap(f"{parts.scheme}://{host}{port}{parts.path}{query}", 2048)


def http_call(params: dict[str, Any], reply: dict[str, Any], duration_ms: float) -> HttpCall:
    """The supervisor's record of one ``http.request`` rpc (never headers or bodies)."""
    method = params.get("method")
    url = params.get("url")
    value = reply.get("value")
    status = value.get("status") if reply.get("ok") and type(value) is dict else None
    return HttpCall(
        method=method.upper()[:16] if type(method) is str else "?",
        url=_redact_url(url) if type(url) is str else "?",
        status=status if type(status) is int else None,
        duration_ms=duration_ms,
        error=None if reply.get("ok") else _cap(str(reply.get("error")), _MAX_LINE),
    )
