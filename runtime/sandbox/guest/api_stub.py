"""The tenant-facing ``api`` object (docs/sandbox.md, b): a facade of facades over an RPC channel.

In the worker, ``api`` holds no client, store, logger or setting: its members are plain
closures that check argument types (``type(x) is str``, never ``isinstance``) and forward
JSON to :class:`ApiChannel`, whose other end (the supervisor) re-validates everything.
Replies come back frozen (:mod:`runtime.sandbox.guest.eventdata`). Failures surface as a *fresh*
``ApiError`` raised outside any ``except`` block, so no host exception rides along in
``__context__``.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from runtime.sandbox.guest.eventdata import EventData, dump_plain, freeze, to_plain
from runtime.sandbox.guest.guards import ApiError, OutputSink
from runtime.sandbox.guest.module_facades import Facade
from runtime.sandbox.shared.contract import SandboxLimits, Trigger

__all__ = ["HTTP_METHODS", "ApiChannel", "Notification", "build_api"]

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
MAX_REASON = 1024
MAX_ERROR = 1024
MAX_KEY = 64
MAX_CACHE_VALUE = 4096
_NUMBER = (int, float)


class ApiChannel(Protocol):
    """The worker's end of the RPC link to the supervisor."""

    def call(self, op: str, params: dict[str, Any]) -> Any:
        """Run ``op`` with JSON ``params``; JSON reply; ``ApiError(message)`` on refusal."""
        ...


class Notification:
    """The last ``api.notification.drop/retry`` call of one invocation (Auth0: last one wins)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: dict[str, str] | None = None


def _need(value: object, kinds: tuple[type, ...], what: str) -> None:
    if type(value) not in kinds:
        names = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)
        raise TypeError(f"{what} must be {names}, not {type(value).__name__}")


def _clean_text(value: object, what: str) -> str:
    _need(value, (str,), what)
    if any(ch in value for ch in "\r\n\0"):  # type: ignore[operator]
        raise ValueError(f"{what} must not contain CR, LF or NUL")
    return value  # type: ignore[return-value]


def _headers(headers: object) -> dict[str, str] | None:
    if headers is None:
        return None
    _need(headers, (dict, EventData), "headers")
    items = headers.items()  # type: ignore[attr-defined]
    return {_clean_text(k, "header name"): _clean_text(v, "header value") for k, v in items}


def _plain(value: object, what: str) -> Any:
    """JSON-compatible copy of ``value``; a fresh TypeError naming ``what`` otherwise."""
    failure = None
    try:
        return to_plain(value)
    except (TypeError, ValueError) as exc:
        failure = str(exc)
    except RecursionError:
        failure = "nested too deeply"
    raise TypeError(f"{what} must be JSON data: {failure}")


def _json_body(value: object) -> Any:
    """``json=`` as sent. NaN and infinity have no JSON form and the frame encoder would turn
    them into null without a word, so they are refused here, where the tenant is told."""
    plain = _plain(value, "json")
    failure = None
    try:
        dump_plain(plain, allow_nan=False)
    except ValueError:
        failure = "json must not contain NaN or infinity (they have no JSON form)"
    if failure:
        raise ApiError(failure)
    return plain


def _timeout(timeout: object, budget: float) -> float | None:
    """Seconds, at most the invocation's budget (the supervisor clamps again)."""
    if timeout is None:
        return None
    _need(timeout, _NUMBER, "timeout")
    if not timeout > 0:  # type: ignore[operator]
        raise ValueError("timeout must be a positive number of seconds")
    return min(float(timeout), budget)  # type: ignore[arg-type]


def _json_size(value: object) -> int:
    if value is None:
        return 0
    text = value if isinstance(value, str) else dump_plain(value)  # plain data by now
    return len(text.encode("utf-8", "surrogatepass"))


def _call(channel: ApiChannel, op: str, params: dict[str, Any], then: Any = None) -> Any:
    """``channel.call`` (its answer through ``then``, when given) with every failure turned
    into a fresh, context-free ``ApiError``."""
    failure = f"api call {op} failed"
    try:
        answer = channel.call(op, params)
        return freeze(answer if then is None else then(answer))
    except ApiError as exc:
        if exc.args and type(exc.args[0]) is str:
            failure = exc.args[0][:MAX_ERROR]
    except MemoryError:
        raise
    except Exception:  # a host error must not reach tenant code: the message stays generic
        pass
    raise ApiError(failure)


def _with_json(answer: Any) -> Any:
    """An HTTP answer with ``json`` parsed from its ``text`` when its content type is JSON
    (None when it is not valid JSON): here, at the worker's cost, never the supervisor's."""
    if type(answer) is not dict or answer.get("json") is not None:
        return answer
    text, headers = answer.get("text"), answer.get("headers")
    content_type = headers.get("content-type", "") if type(headers) is dict else ""
    mime = content_type.split(";", 1)[0].strip().lower() if type(content_type) is str else ""
    if type(text) is not str or (mime != "application/json" and not mime.endswith("+json")):
        return answer
    try:
        parsed = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        parsed = None
    return {**answer, "json": parsed}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _cache_error(code: str, message: str) -> Any:
    """Auth0's failed ``CacheWriteResult``, frozen like every answer."""
    return freeze({"type": "error", "code": code, "message": message})


def _key_problem(key: object) -> str | None:
    """Why ``key`` cannot name a record (the supervisor checks again), or None."""
    if type(key) is not str:
        return f"cache key must be a string (got {type(key).__name__})"
    if not key or len(key) > MAX_KEY:  # a character is 1-4 bytes: the rest is the supervisor's
        return f"cache key must be 1 to {MAX_KEY} bytes of UTF-8"
    return None


_CACHE_OPTIONS = frozenset({"ttl", "expires_at"})


def _cache_options(ttl: Any, expires_at: Any) -> tuple[Any, Any, str | None]:
    """``(ttl, expires_at, problem)``; Auth0's ``set(key, value, {ttl, expires_at})`` form too."""
    if type(ttl) in (dict, EventData):
        if expires_at is not None:
            return None, None, "give the options object or expires_at=, not both"
        unknown = sorted(str(name) for name in ttl if name not in _CACHE_OPTIONS)
        if unknown:
            return None, None, f"unknown cache option {unknown[0]!r} (use ttl, expires_at)"
        ttl, expires_at = ttl.get("ttl"), ttl.get("expires_at")
    return ttl, expires_at, None


def _cache_write(channel: ApiChannel, op: str, params: dict[str, Any]) -> Any:
    """A cache write's answer; a call the supervisor could not serve in time is an error
    result too, as a write in Auth0 answers rather than throws."""
    try:
        return _call(channel, op, params)
    except ApiError as exc:
        failure = str(exc)
    return _cache_error("unavailable", failure)


def build_api(
    channel: ApiChannel, trigger: Trigger, sink: OutputSink, limits: SandboxLimits
) -> tuple[Facade, Notification]:
    """The ``api`` facade for one invocation, and the box its ``notification`` calls fill."""
    notification = Notification()
    http_calls = 0

    def request(
        method: str,
        url: str,
        headers: Any = None,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        timeout: Any = None,
    ) -> Any:
        nonlocal http_calls
        _need(method, (str,), "method")
        if method.upper() not in HTTP_METHODS:
            raise ValueError(f"method must be one of {', '.join(sorted(HTTP_METHODS))}")
        _need(url, (str,), "url")
        _need(data, (str, dict, EventData, type(None)), "data")
        payload = {
            "method": method.upper(),
            "url": url,
            "headers": _headers(headers),
            "params": None if params is None else _plain(params, "params"),
            "json": None if json is None else _json_body(json),
            "data": data if type(data) is str else _plain(data, "data"),
            "timeout": _timeout(timeout, limits.timeout),
        }
        size = _json_size(payload["json"]) + _json_size(payload["data"])
        if size > limits.max_http_request_bytes:
            raise ApiError(f"request body over the limit of {limits.max_http_request_bytes} bytes")
        if http_calls >= limits.max_http_requests:
            raise ApiError(f"at most {limits.max_http_requests} HTTP requests per invocation")
        http_calls += 1
        return _call(channel, "http.request", payload, then=_with_json)

    def get(url: str, headers: Any = None, params: Any = None, timeout: Any = None) -> Any:
        return request("GET", url, headers=headers, params=params, timeout=timeout)

    def post(
        url: str, json: Any = None, data: Any = None, headers: Any = None, timeout: Any = None
    ) -> Any:
        return request("POST", url, headers=headers, json=json, data=data, timeout=timeout)

    def cache_get(key: str) -> Any:
        _need(key, (str,), "cache key")
        if _key_problem(key):
            return None  # no record can have this key
        return _call(channel, "cache.get", {"key": key})

    def cache_set(key: str, value: Any, ttl: Any = None, expires_at: Any = None) -> Any:
        """Auth0's ``CacheWriteResult``: ``{type: "success"}`` or ``{type: "error", code,
        message}``; it never raises for what it is given."""
        problem = _key_problem(key)
        if problem:
            return _cache_error("invalid_key", problem)
        if type(value) is not str:
            return _cache_error(
                "invalid_value",
                f"cache value must be a string (got {type(value).__name__}); "
                "store JSON text, e.g. json.dumps(value)",
            )
        if len(value) > MAX_CACHE_VALUE:  # each character is at least one byte
            return _cache_error(
                "value_too_large", f"cache value is over the limit of {MAX_CACHE_VALUE} bytes"
            )
        ttl, expires_at, problem = _cache_options(ttl, expires_at)
        if problem:
            return _cache_error("invalid_options", problem)
        if type(ttl) not in (int, float, type(None)):
            return _cache_error("invalid_ttl", "ttl must be a positive number of milliseconds")
        if type(expires_at) not in (int, float, type(None)):
            return _cache_error(
                "invalid_expires_at", "expires_at must be a number of epoch milliseconds"
            )
        params = {"key": key, "value": value, "ttl": ttl, "expires_at": expires_at}
        return _cache_write(channel, "cache.set", params)

    def cache_delete(key: str) -> Any:
        problem = _key_problem(key)
        if problem:
            return _cache_error("invalid_key", problem)
        return _cache_write(channel, "cache.delete", {"key": key})

    def logger(level: str) -> Any:
        def log(message: str) -> None:
            _need(message, (str,), f"api.log.{level}() message")
            sink.log(f"[{level}] {message}")

        log.__name__ = log.__qualname__ = level
        return log

    members: dict[str, object] = {
        "http": Facade("api.http", {"get": get, "post": post, "request": request}),
        "cache": Facade("api.cache", {"get": cache_get, "set": cache_set, "delete": cache_delete}),
        "log": Facade("api.log", {level: logger(level) for level in ("info", "warning", "error")}),
    }
    if trigger == "custom-phone-provider":

        def outcome(action: str) -> Any:
            def record(reason: str) -> None:
                _need(reason, (str,), f"api.notification.{action}() reason")
                notification.value = {"action": action, "reason": reason[:MAX_REASON]}

            record.__name__ = record.__qualname__ = action
            return record

        members["notification"] = Facade(
            "api.notification", {"drop": outcome("drop"), "retry": outcome("retry")}
        )
    return Facade("api", members), notification
