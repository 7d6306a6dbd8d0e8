"""What a tenant may ask ``api.http`` for: the operator's policy, the re-validated request, and
the destination rules (scheme, port, host spelling, public addresses).

Everything here runs before a byte is written, so a refusal from this module is never a
hand-off (see :mod:`~runtime.sandbox.host.egress.wire`).
"""

from __future__ import annotations

import json
import re
import socket
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from runtime.sandbox.host.refusals import EgressDenied
from runtime.sandbox.shared.contract import SandboxLimits

__all__ = [
    "MAX_URL",
    "METHODS",
    "EgressPolicy",
    "IPAddress",
    "Spec",
    "Target",
    "host_literal",
    "is_public_address",
    "parse_request",
    "parse_url",
    "split_entry",
]

IPAddress = IPv4Address | IPv6Address

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
MAX_URL = 2048
MAX_QUERY_PARAMS = 100
MAX_HEADERS = 64
MAX_HEADER_NAME = 128
MAX_HEADER_VALUE = 8 * 1024
MAX_HEADER_BYTES = 16 * 1024
# Framing and routing are ours: a tenant Host or Transfer-Encoding could smuggle or re-route.
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te"}
    | {"trailer", "proxy-authorization", "proxy-connection", "accept-encoding"}
)
_FIELDS = frozenset({"method", "url", "headers", "params", "json", "data", "timeout"})
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_VALUE = re.compile(r"[\t\x20-\x7e]*")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_NUMERIC = re.compile(r"0x[0-9a-f]*|[0-9]+")
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")
# The URL parse cache is process-wide and tenants choose its keys: few entries, short keys.
_URL_CACHE_ENTRIES = 256
_URL_CACHE_MAX_KEY = 512

_DENIED_V4 = tuple(
    IPv4Network(n)
    for n in "0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 "  # noqa: SIM905
    "192.0.0.0/24 192.0.2.0/24 192.88.99.0/24 192.168.0.0/16 198.18.0.0/15 198.51.100.0/24 "
    "203.0.113.0/24 224.0.0.0/4 240.0.0.0/4".split()
)
_DENIED_V6 = tuple(
    IPv6Network(n)
    for n in "::/96 ::ffff:0:0:0/96 64:ff9b:1::/48 100::/64 2001::/23 2001:db8::/32 2002::/16 "  # noqa: SIM905
    "3fff::/20 5f00::/16 fc00::/7 fe80::/10 fec0::/10 ff00::/8".split()
)
_NAT64 = IPv6Network("64:ff9b::/96")


class EgressPolicy(BaseModel):
    """Operator settings for tenant HTTP egress."""

    model_config = ConfigDict(frozen=True)

    allow_http_hosts: frozenset[str] = frozenset()
    """``host`` or ``host:port`` (``[v6]:port``): plain http allowed, public-address rule waived."""
    allowed_ports: frozenset[int] = frozenset({443, 80})
    connect_timeout: float = Field(default=3.0, gt=0)
    max_redirects: int = Field(default=3, ge=0, le=10)
    max_requests_per_tenant_per_minute: int = Field(default=600, ge=1)
    dns_servers: tuple[str, ...] = ()
    """Name servers for tenant lookups (``ip`` or ``ip:port``); empty: the system's."""
    dns_lookups_per_tenant: int = Field(default=4, ge=1, le=64)
    """Lookups one tenant may have in flight; more wait (within their request's time)."""

    @field_validator("allow_http_hosts")
    @classmethod
    def _entries(cls, value: frozenset[str]) -> frozenset[str]:
        for entry in value:
            split_entry(entry)
        return value


def is_public_address(ip: IPAddress) -> bool:
    """True if ``ip`` is globally reachable unicast (the embedded IPv4 of mapped/NAT64 too)."""
    if isinstance(ip, IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public_address(ip.ipv4_mapped)
        if ip in _NAT64:
            return is_public_address(IPv4Address(int(ip) & 0xFFFFFFFF))
        return ip.is_global and not any(ip in net for net in _DENIED_V6)
    return ip.is_global and not any(ip in net for net in _DENIED_V4)


@dataclass(frozen=True, slots=True)
class Spec:
    """One re-validated ``http.request``."""

    method: str
    url: httpx.URL
    headers: list[tuple[str, str]]
    body: bytes | None
    timeout: float | None


@dataclass(frozen=True, slots=True)
class Target:
    """Where one hop goes, as checked."""

    scheme: str
    host: str  # lower-case ASCII (IDNA), no brackets
    port: int
    literal: IPAddress | None
    exempt: bool  # in allow_http_hosts


def parse_request(params: dict[str, Any], limits: SandboxLimits) -> Spec:
    """Re-validate an ``http.request`` from the worker; None means "not given"."""
    if type(params) is not dict:
        raise EgressDenied("http.request params must be an object")
    for name in params:
        if type(name) is not str or name not in _FIELDS:
            raise EgressDenied(f"unknown http.request parameter {str(name)[:64]!r}")
    method = params.get("method")
    if type(method) is not str or method.upper() not in METHODS:
        raise EgressDenied(f"method must be one of {', '.join(sorted(METHODS))}")
    method = method.upper()
    url = parse_url(params.get("url"), params.get("params"))
    headers = _headers(params.get("headers"))
    body, content_type = _body(method, params.get("json"), params.get("data"), limits)
    if content_type and all(name != "content-type" for name, _ in headers):
        headers.append(("content-type", content_type))
    timeout = params.get("timeout")
    if timeout is not None and not (type(timeout) in (int, float) and 0 < timeout <= 86_400):
        raise EgressDenied("timeout must be a positive number of seconds")  # NaN fails too
    return Spec(method, url, headers, body, None if timeout is None else float(timeout))


def parse_url(raw: object, query: object) -> httpx.URL:
    """A tenant's (or a server's redirect) URL, checked for spelling tricks and size."""
    if type(raw) is not str:
        raise EgressDenied("url must be a string")
    if len(raw) > MAX_URL:
        raise EgressDenied(f"url is longer than {MAX_URL} characters")
    if _CONTROL.search(raw):
        raise EgressDenied("url must not contain control characters (CR, LF, NUL, ...)")
    authority = _AUTHORITY.match(raw)
    if authority and ("@" in authority[1] or "\\" in authority[1]):
        raise EgressDenied("url must not contain credentials or '\\' before the host (user@host)")
    url = _cached_url(raw) if len(raw) <= _URL_CACHE_MAX_KEY else _absolute_url(raw)
    if url is None:
        raise EgressDenied("url is not a valid absolute URL")
    if query is not None:
        if type(query) is not dict or len(query) > MAX_QUERY_PARAMS:
            raise EgressDenied(f"params must be an object of at most {MAX_QUERY_PARAMS} strings")
        for key, value in query.items():
            if type(key) is not str or type(value) is not str:
                raise EgressDenied("params must map strings to strings")
        url = url.copy_merge_params(query)
        if len(str(url)) > MAX_URL:
            raise EgressDenied(f"url with params is longer than {MAX_URL} characters")
    return url


def _absolute_url(raw: str) -> httpx.URL | None:
    """``raw`` parsed, without its fragment; None when it is not a valid absolute URL, or
    when its host as sent is not ASCII (an IPv6 zone id of any bytes, ``[::1%\xad]``, passes
    httpx's parser and would break every later use of the host)."""
    with suppress(httpx.InvalidURL, ValueError, UnicodeError):
        url = httpx.URL(raw).copy_with(fragment=None)
        if url.raw_host.isascii():
            return url
    return None


# Cached: an action calls the same few endpoints again and again, and httpx parses slowly.
# Only short URLs, and few of them: the cache is shared by every tenant (bounded memory).
_cached_url = lru_cache(maxsize=_URL_CACHE_ENTRIES)(_absolute_url)


def _headers(raw: object) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if type(raw) is not dict:
        raise EgressDenied("headers must be an object of strings")
    if len(raw) > MAX_HEADERS:
        raise EgressDenied(f"at most {MAX_HEADERS} headers")
    seen: set[str] = set()
    total = 0
    for name, value in raw.items():
        if type(name) is not str or type(value) is not str:
            raise EgressDenied("header names and values must be strings")
        shown = repr(name[:64])
        if any(ch in name or ch in value for ch in "\r\n\0"):
            raise EgressDenied(f"header {shown} contains CR, LF or NUL")
        if len(name) > MAX_HEADER_NAME or not _TOKEN.fullmatch(name):
            raise EgressDenied(f"header name {shown} is not a valid HTTP token")
        if len(value) > MAX_HEADER_VALUE or not _VALUE.fullmatch(value):
            raise EgressDenied(
                f"header {shown} must be printable ASCII of at most {MAX_HEADER_VALUE} characters"
            )
        lower = name.lower()
        if lower in RESERVED_HEADERS or lower.startswith("proxy-"):
            raise EgressDenied(f"header {shown} is set by the runtime")
        if lower in seen:
            raise EgressDenied(f"header {shown} is given twice")
        seen.add(lower)
        total += len(name) + len(value)
    if total > MAX_HEADER_BYTES:
        raise EgressDenied(f"headers are larger than {MAX_HEADER_BYTES} bytes in total")
    return [(name.lower(), value) for name, value in raw.items()]


def _body(
    method: str, json_body: object, data: object, limits: SandboxLimits
) -> tuple[bytes | None, str | None]:
    if json_body is not None and data is not None:
        raise EgressDenied("give at most one of json and data")
    if json_body is None and data is None:
        return None, None
    if method in ("GET", "HEAD"):
        raise EgressDenied(f"a {method} request has no body")
    if json_body is not None:
        body, content_type = _dump_json(json_body), "application/json"
    elif type(data) is str:
        body, content_type = _utf8(data, "data"), "text/plain; charset=utf-8"
    elif type(data) is dict and all(type(k) is str and type(v) is str for k, v in data.items()):
        body = _utf8(urlencode(data), "data")
        content_type = "application/x-www-form-urlencoded"
    else:
        raise EgressDenied("data must be a string or an object of strings (a form)")
    if len(body) > limits.max_http_request_bytes:
        raise EgressDenied(
            f"request body is larger than {limits.max_http_request_bytes} bytes "
            "(max_http_request_bytes)"
        )
    return body, content_type


def _dump_json(value: object) -> bytes:
    text: str | None = None
    with suppress(TypeError, ValueError, RecursionError):
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    if text is None:
        raise EgressDenied("json must be plain JSON data (no NaN, no cycles, not too deep)")
    return _utf8(text, "json")


def _utf8(text: str, what: str) -> bytes:
    data: bytes | None = None
    with suppress(UnicodeEncodeError):
        data = text.encode()
    if data is None:
        raise EgressDenied(f"{what} must be valid Unicode text")
    return data


def host_literal(host: str) -> IPAddress | None:
    """The IP literal ``host`` stands for, None for a name; refuse anything ambiguous."""
    if not host:
        raise EgressDenied("url has no host")
    if ":" in host:  # httpx strips the brackets of an IPv6 literal
        literal: IPAddress | None = None
        if "%" not in host:
            with suppress(ValueError):
                literal = IPv6Address(host)
        if literal is None:
            raise EgressDenied(f"invalid IPv6 host {host[:64]!r} (zone ids are not allowed)")
        return literal
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not _HOSTNAME.fullmatch(name):
        raise EgressDenied(f"invalid host name {host[:64]!r}")
    if _NUMERIC.fullmatch(name.rsplit(".", 1)[-1]) or _inet_aton(name):
        # URL parsers and inet_aton read 2130706433, 0x7f.1, 0177.0.0.1 and 127.1 as 127.0.0.1.
        dotted: IPAddress | None = None
        with suppress(ValueError):
            dotted = IPv4Address(host)
        if dotted is None:
            raise EgressDenied(
                f"numeric host {host[:64]!r} must be written as a plain dotted-quad IPv4 address"
            )
        return dotted
    return None


def _inet_aton(name: str) -> bool:
    try:
        socket.inet_aton(name)
    except OSError:
        return False
    return True


def split_entry(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port`` or ``[v6]:port`` as (host, port or None); ValueError if bad."""
    text = entry.strip().lower()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        colon, port = rest[:1], rest[1:]
    elif text.count(":") == 1:
        host, colon, port = text.partition(":")
    else:
        host, colon, port = text, "", ""
    if not host or (colon and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ValueError(f"allow_http_hosts: bad entry {entry!r} (want host or host:port)")
    return host, int(port) if port else None
