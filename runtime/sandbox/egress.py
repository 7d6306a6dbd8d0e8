"""``api.http``: one tenant HTTP request, made safely by the supervisor (SANDBOX.md §4.5).

The worker only *asks*; everything it sent is re-validated here (``api_09``-``api_13``):

* params: method, URL (≤ 2048 chars with its query), header names/values (RFC 9110 tokens,
  no CR/LF/NUL, printable ASCII, size caps, no framing or routing headers), one body at most;
* destination: https only (plain http, and any address, only for ``allow_http_hosts``), no
  ``user@host``, allowed ports only, host names strictly LDH, numeric hosts only as a canonical
  dotted quad (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1`` are refused, not guessed);
* addresses: the host is resolved **once** per hop and every address must be public (IPv4-mapped
  and NAT64 IPv6 unwrapped; 6to4, Teredo, ULA, link-local, site-local, documentation refused);
  the connection then goes to that pinned IP, with the Host header and TLS SNI/verification
  kept on the name, so DNS rebinding cannot move it;
* redirects are followed by hand, each hop re-checked, re-resolved and re-pinned; credentials
  are not forwarded across origins;
* limits: a per-invocation :class:`InvocationBudget`, a per-tenant sliding-window quota, the
  invocation deadline as total timeout, a response cap checked while streaming (also after
  gzip/deflate decoding, so a compression bomb stops at the cap).

Connection pooling is per pinned origin (scheme, host, IP, port): a connection verified for one
name is never reused for another name on the same IP. Each origin has small shards (httpx
transports with ≤ ``_PER_SHARD`` connections, never queueing inside httpcore), because httpcore
1.0's pool does O(connections) work per request and collapses under concurrency
(encode/httpx#3215). Requests go straight to a shard's transport, with no ``httpx.AsyncClient``
around it: no cookie jar exists to leak a Set-Cookie between tenants sharing a pool.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import re
import socket
import ssl
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from runtime.sandbox.services import ApiRefused
from runtime.sandbox.types import SandboxLimits

__all__ = [
    "METHODS",
    "Egress",
    "EgressDenied",
    "EgressFailed",
    "EgressPolicy",
    "InvocationBudget",
    "Resolver",
    "TransportFactory",
    "is_public_address",
]

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> IP strings``; the default uses the event loop's ``getaddrinfo``."""
TransportFactory = Callable[[], httpx.AsyncBaseTransport]
"""Makes the transport of one pool shard; requests it sees go to the pinned IP."""
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
_CROSS_ORIGIN_HEADERS = frozenset({"accept", "accept-language", "user-agent", "content-type"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_FIELDS = frozenset({"method", "url", "headers", "params", "json", "data", "timeout"})
# What every request carries unless the tenant sets it (accept-encoding is reserved): the
# headers an httpx.AsyncClient with our user-agent would send.
_CLIENT_HEADERS = (
    ("Accept", "*/*"),
    ("Connection", "keep-alive"),
    ("user-agent", "phone-actions"),
    ("accept-encoding", "gzip, deflate"),
)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_VALUE = re.compile(r"[\t\x20-\x7e]*")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_NUMERIC = re.compile(r"0x[0-9a-f]*|[0-9]+")
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")
_PER_SHARD = 4  # connections per client: small pools stay cheap (see module docstring)
_MAX_SHARDS = 16  # so at most 64 requests in flight per pinned origin; more wait
_MAX_ORIGINS = 256  # idle origins beyond this are closed, oldest first
_MAX_TRIES = 3  # pinned addresses tried when connecting is refused outright
_WINDOW = 60.0

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


class EgressDenied(ApiRefused):
    """The egress policy refused the request (URL, address, port, header, size or quota)."""


class EgressFailed(ApiRefused):
    """An allowed request failed: network, TLS, timeout, bad or oversize response."""


class EgressPolicy(BaseModel):
    """Operator settings for tenant HTTP egress."""

    model_config = ConfigDict(frozen=True)

    allow_http_hosts: frozenset[str] = frozenset()
    """``host`` or ``host:port`` (``[v6]:port``): plain http allowed, public-address rule waived."""
    allowed_ports: frozenset[int] = frozenset({443, 80})
    connect_timeout: float = Field(default=3.0, gt=0)
    max_redirects: int = Field(default=3, ge=0, le=10)
    max_requests_per_tenant_per_minute: int = Field(default=600, ge=1)

    @field_validator("allow_http_hosts")
    @classmethod
    def _entries(cls, value: frozenset[str]) -> frozenset[str]:
        for entry in value:
            _split_entry(entry)
        return value


class InvocationBudget:
    """HTTP requests one invocation may still send (each redirect hop is one request)."""

    def __init__(self, max_requests: int) -> None:
        self.max_requests = max_requests
        self.used = 0

    @classmethod
    def for_limits(cls, limits: SandboxLimits) -> InvocationBudget:
        return cls(limits.max_http_requests)

    def take(self) -> None:
        if self.used >= self.max_requests:
            raise EgressDenied(
                f"HTTP request limit reached: at most {self.max_requests} requests per invocation"
            )
        self.used += 1


class _TenantQuota:
    """Sliding one-minute window of request times per tenant."""

    def __init__(self, limit: int, clock: Callable[[], float]) -> None:
        self._limit = limit
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}
        self._next_sweep = clock() + _WINDOW

    def take(self, tenant: str) -> None:
        now = self._clock()
        if now >= self._next_sweep:  # forget tenants that have been quiet for a minute
            self._next_sweep = now + _WINDOW
            for name in [t for t, q in self._sent.items() if q[-1] <= now - _WINDOW]:
                del self._sent[name]
        sent = self._sent.setdefault(tenant, deque())
        while sent and sent[0] <= now - _WINDOW:
            sent.popleft()
        if len(sent) >= self._limit:
            raise EgressDenied(f"HTTP rate limit reached: at most {self._limit} requests a minute")
        sent.append(now)


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
class _Spec:
    method: str
    url: httpx.URL
    headers: list[tuple[str, str]]
    body: bytes | None
    timeout: float | None


@dataclass(frozen=True, slots=True)
class _Target:
    scheme: str
    host: str  # lower-case ASCII (IDNA), no brackets
    port: int
    literal: IPAddress | None
    exempt: bool  # in allow_http_hosts


def _parse(params: dict[str, Any], limits: SandboxLimits) -> _Spec:
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
    url = _url(params.get("url"), params.get("params"))
    headers = _headers(params.get("headers"))
    body, content_type = _body(method, params.get("json"), params.get("data"), limits)
    if content_type and all(name != "content-type" for name, _ in headers):
        headers.append(("content-type", content_type))
    timeout = params.get("timeout")
    if timeout is not None and not (type(timeout) in (int, float) and 0 < timeout <= 86_400):
        raise EgressDenied("timeout must be a positive number of seconds")  # NaN fails too
    return _Spec(method, url, headers, body, None if timeout is None else float(timeout))


def _url(raw: object, query: object) -> httpx.URL:
    if type(raw) is not str:
        raise EgressDenied("url must be a string")
    if len(raw) > MAX_URL:
        raise EgressDenied(f"url is longer than {MAX_URL} characters")
    if _CONTROL.search(raw):
        raise EgressDenied("url must not contain control characters (CR, LF, NUL, ...)")
    authority = _AUTHORITY.match(raw)
    if authority and ("@" in authority[1] or "\\" in authority[1]):
        raise EgressDenied("url must not contain credentials or '\\' before the host (user@host)")
    url = _absolute_url(raw)
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


def _host(host: str) -> IPAddress | None:
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


def _split_entry(entry: str) -> tuple[str, int | None]:
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


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(eq=False)
class _Shard:
    transport: httpx.AsyncBaseTransport
    busy: int = 0


@dataclass(eq=False)
class _Origin:
    room: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(_PER_SHARD * _MAX_SHARDS)
    )
    shards: list[_Shard] = field(default_factory=list)
    users: int = 0  # waiting or active requests: never closed while > 0


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    location: str | None


class Egress:
    """Perform tenant HTTP requests under an :class:`EgressPolicy`; one per supervisor.

    ``resolver`` and ``transport_factory`` are seams for tests (no real DNS, no real sockets);
    ``clock`` drives the per-tenant quota window.
    """

    def __init__(
        self,
        policy: EgressPolicy,
        limits: SandboxLimits,
        *,
        resolver: Resolver | None = None,
        transport_factory: TransportFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = policy
        self._limits = limits
        self._resolver = resolver or _system_resolver
        self._transport_factory = transport_factory or self._default_transport
        self._quota = _TenantQuota(policy.max_requests_per_tenant_per_minute, clock)
        self._allowed: dict[str, set[int | None]] = {}
        for entry in policy.allow_http_hosts:
            host, port = _split_entry(entry)
            self._allowed.setdefault(host, set()).add(port)
        self._origins: OrderedDict[tuple[str, str, str, int], _Origin] = OrderedDict()
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def request(
        self, tenant: str, params: dict[str, Any], *, deadline: float, budget: InvocationBudget
    ) -> dict[str, Any]:
        """``{"status", "headers", "text", "json"}`` for ``params`` (``http.request``).

        ``deadline`` is ``time.monotonic()``-based and bounds everything: DNS, connect, body.
        Raises :class:`EgressDenied` or :class:`EgressFailed`.
        """
        if self._closed:
            raise EgressFailed("HTTP egress is shut down")
        spec = _parse(params, self._limits)
        now = time.monotonic()
        if spec.timeout is not None:
            deadline = min(deadline, now + spec.timeout)
        if deadline <= now:
            raise EgressFailed("request not sent: no time left before the deadline")
        failure: ApiRefused
        try:
            async with asyncio.timeout(deadline - now):
                return await self._follow(tenant, spec, deadline, budget)
        except TimeoutError:  # may have struck after the request went out
            failure = EgressFailed(f"request to {_shown(spec.url)} timed out", maybe_sent=True)
        except ApiRefused as exc:
            failure = type(exc)(exc.message, maybe_sent=exc.maybe_sent)
        log.info("egress for tenant %s to %s: %s", tenant, _shown(spec.url), failure)
        raise failure

    async def aclose(self) -> None:
        """Close every pooled connection; later requests fail."""
        self._closed = True
        origins, self._origins = list(self._origins.values()), OrderedDict()
        for origin in origins:
            for shard in origin.shards:
                await shard.transport.aclose()

    async def _follow(
        self, tenant: str, spec: _Spec, deadline: float, budget: InvocationBudget
    ) -> dict[str, Any]:
        method, url, headers, body = spec.method, spec.url, spec.headers, spec.body
        hop = 0
        while True:
            target = self._target(url)
            budget.take()
            self._quota.take(tenant)
            addresses = await self._addresses(target)
            answer = await self._exchange(target, addresses, method, url, headers, body, deadline)
            if answer.location is None:
                return _result(answer)
            if hop >= self._policy.max_redirects:
                limit = self._policy.max_redirects
                raise EgressDenied(f"too many redirects (more than {limit}) from {_shown(url)}")
            hop += 1
            following = _join(url, answer.location)
            if (answer.status == 303 and method != "HEAD") or (
                answer.status in (301, 302) and method == "POST"
            ):
                method, body = "GET", None
                headers = [(k, v) for k, v in headers if k != "content-type"]
            if _origin_of(following) != _origin_of(url):  # no credentials for another origin
                headers = [(k, v) for k, v in headers if k in _CROSS_ORIGIN_HEADERS]
            url = following

    def _target(self, url: httpx.URL) -> _Target:
        """Check scheme, credentials, host, port and (for IP literals) the address."""
        scheme = url.scheme
        if scheme not in ("https", "http"):
            raise EgressDenied(f"URL scheme {scheme[:16]!r} is not allowed; use https")
        if url.userinfo:
            raise EgressDenied("url must not contain credentials (user@host); use a header")
        host = url.raw_host.decode("ascii").lower()
        literal = _host(host)
        port = url.port if url.port is not None else (443 if scheme == "https" else 80)
        if not 0 < port < 65536:
            raise EgressDenied(f"port {port} is not valid")
        ports = self._allowed.get(host, set())
        exempt = port in ports or (None in ports and port in self._policy.allowed_ports)
        if scheme == "http" and not exempt:
            raise EgressDenied(f"plain http is not allowed for {host}; use https")
        if not exempt and port not in self._policy.allowed_ports:
            raise EgressDenied(f"port {port} is not allowed")
        if literal is not None and not exempt and not is_public_address(literal):
            raise EgressDenied(f"address {host} is not a public address")
        return _Target(scheme, host, port, literal, exempt)

    async def _addresses(self, target: _Target) -> list[IPAddress]:
        """Resolve once; every address must be public unless the host is allow-listed."""
        if target.literal is not None:
            return [target.literal]
        answers: object = None
        try:
            answers = await self._resolver(target.host, target.port)
        except (OSError, UnicodeError) as exc:
            log.info("egress: resolving %s failed: %s", target.host, exc)
        addresses: list[IPAddress] = []
        for answer in answers if type(answers) is list else []:
            try:
                addresses.append(ip_address(answer if type(answer) is str else ""))
            except ValueError:
                addresses = []
                break
        if addresses and (target.exempt or all(map(is_public_address, addresses))):
            return list(dict.fromkeys(addresses))
        log.info("egress: %s resolved to %r: refused", target.host, answers)
        # One message for "no answer" and "private answer": tenants must not map internal DNS.
        raise EgressDenied(f"host {target.host} does not resolve to a public address")

    async def _exchange(
        self,
        target: _Target,
        addresses: list[IPAddress],
        method: str,
        url: httpx.URL,
        headers: list[tuple[str, str]],
        body: bytes | None,
        deadline: float,
    ) -> _Answer:
        """Send to the pinned addresses in turn while connecting is refused outright."""
        tries = addresses[:_MAX_TRIES]
        failure: EgressFailed | None = None
        for n, ip in enumerate(tries):
            async with self._transport(target, ip) as transport:
                remaining = max(deadline - time.monotonic(), 0.001)
                timeout = httpx.Timeout(
                    remaining, connect=min(self._policy.connect_timeout, remaining)
                )
                extensions: dict[str, Any] = {"timeout": timeout.as_dict()}
                if target.scheme == "https" and target.literal is None:
                    extensions["sni_hostname"] = target.host
                request = httpx.Request(
                    method,
                    _pinned(url, str(ip)),
                    headers=_request_headers(headers, url.netloc.decode("ascii")),
                    content=body,
                    extensions=extensions,
                )
                try:
                    response = await transport.handle_async_request(request)
                    try:
                        return await self._answer(response, method)
                    finally:
                        await response.aclose()
                except httpx.ConnectError as exc:
                    if n + 1 < len(tries):
                        log.info("egress: connecting to %s failed, next address", target.host)
                        continue
                    failure = _failure(exc, target.host)
                except httpx.HTTPError as exc:
                    failure = _failure(exc, target.host)
            break
        raise failure or EgressFailed(f"could not connect to {target.host}")

    async def _answer(self, response: httpx.Response, method: str) -> _Answer:
        headers: dict[str, str] = {}
        for name, value in response.headers.multi_items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        status = response.status_code
        location = headers.get("location") if status in _REDIRECTS else None
        if location is not None or method == "HEAD":
            return _Answer(status, headers, b"", location)
        body = await _read_body(response, headers, self._limits.max_http_response_bytes)
        return _Answer(status, headers, body, None)

    @asynccontextmanager
    async def _transport(
        self, target: _Target, ip: IPAddress
    ) -> AsyncIterator[httpx.AsyncBaseTransport]:
        """A pooled transport for this pinned origin, with a free connection slot."""
        key = (target.scheme, target.host, str(ip), target.port)
        origin = self._origins.pop(key, None) or _Origin()
        self._origins[key] = origin  # most recently used last
        origin.users += 1
        retired = [self._origins.pop(k) for k in self._idle_excess()]
        try:
            for old in retired:
                for shard in old.shards:
                    await shard.transport.aclose()
            async with origin.room:
                free = [s for s in origin.shards if s.busy < _PER_SHARD]
                shard = free[0] if free else _Shard(self._transport_factory())
                if not free:
                    origin.shards.append(shard)
                shard.busy += 1
                try:
                    yield shard.transport
                finally:
                    shard.busy -= 1
        finally:
            origin.users -= 1

    def _idle_excess(self) -> list[tuple[str, str, str, int]]:
        excess = len(self._origins) - _MAX_ORIGINS
        idle = [key for key, origin in self._origins.items() if origin.users == 0]
        return idle[: max(excess, 0)]

    def _default_transport(self) -> httpx.AsyncBaseTransport:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(trust_env=False)
        limits = httpx.Limits(max_connections=_PER_SHARD, max_keepalive_connections=_PER_SHARD)
        return httpx.AsyncHTTPTransport(verify=self._ssl, trust_env=False, limits=limits)


def _request_headers(headers: list[tuple[str, str]], host: str) -> httpx.Headers:
    """The runtime's defaults, then the tenant's headers over them, then Host: what
    ``httpx.AsyncClient`` with our user-agent sent, without the client.

    The transport is called directly: a client would add cookie handling (refused anyway,
    since pools are shared by tenants), auth and redirect machinery (redirects are followed
    here, hop by hop), and cost more than the policy checks (bench/replay.py).
    """
    merged = httpx.Headers(_CLIENT_HEADERS)
    merged.update([*headers, ("host", host)])
    return merged


@lru_cache(maxsize=1024)
def _pinned(url: httpx.URL, ip: str) -> httpx.URL:
    """``url`` sent to the pinned address (the Host header and SNI keep the name)."""
    return url.copy_with(host=ip)


@lru_cache(maxsize=1024)
def _absolute_url(raw: str) -> httpx.URL | None:
    """``raw`` parsed, without its fragment; None when it is not a valid absolute URL. Cached:
    an action calls the same few endpoints again and again, and httpx parses slowly."""
    with suppress(httpx.InvalidURL, ValueError, UnicodeError):
        return httpx.URL(raw).copy_with(fragment=None)
    return None


def _shown(url: httpx.URL) -> str:
    """The host as sent (ASCII/IDNA); ``url.host`` would decode IDNA and can raise."""
    return url.raw_host.decode("ascii", "replace")[:255]


def _origin_of(url: httpx.URL) -> tuple[str, bytes, int | None]:
    return url.scheme, url.raw_host.lower(), url.port


def _join(url: httpx.URL, location: str) -> httpx.URL:
    """The next hop's URL; checked like a tenant URL (the server is not trusted either)."""
    joined: httpx.URL | None = None
    if len(location) <= MAX_URL and not any(ord(ch) < 0x20 for ch in location):
        with suppress(httpx.InvalidURL, ValueError, UnicodeError):
            joined = url.join(location)
    if joined is None:
        raise EgressDenied(f"redirect from {_shown(url)} to an invalid URL")
    return _url(str(joined), None)


def _failure(exc: httpx.HTTPError, host: str) -> EgressFailed:
    """A tenant-safe message for a network error; the details go to the host log only."""
    log.info("egress to %s failed: %s: %.200s", host, type(exc).__name__, exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return EgressFailed(f"could not connect to {host} in time")
    if isinstance(exc, httpx.PoolTimeout):
        return EgressFailed(f"request to {host} timed out before it was sent")
    if isinstance(exc, httpx.TimeoutException):  # read or write: the server may have it
        return EgressFailed(f"request to {host} timed out", maybe_sent=True)
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        for _ in range(5):
            if isinstance(cause, ssl.SSLError):
                return EgressFailed(f"TLS handshake with {host} failed (certificate or protocol)")
            cause = cause.__cause__ or cause.__context__ if cause else None
        return EgressFailed(f"could not connect to {host}")
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return EgressFailed(
            f"connection to {host} broke off or the response was invalid", maybe_sent=True
        )
    return EgressFailed(f"request to {host} failed", maybe_sent=True)


def _too_large(limit: int) -> EgressFailed:
    return EgressFailed(
        f"response body is larger than {limit} bytes (max_http_response_bytes)", maybe_sent=True
    )


async def _read_body(response: httpx.Response, headers: dict[str, str], limit: int) -> bytes:
    """Stream the body; stop as soon as the raw or decoded size passes ``limit``."""
    if response.is_stream_consumed:  # an in-memory body (httpx.MockTransport): decoded already
        if len(response.content) > limit:
            raise _too_large(limit)
        return response.content
    declared = headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and (len(declared) > 15 or int(declared) > limit):
        raise _too_large(limit)
    inflater = _Inflater.for_encoding(headers.get("content-encoding", ""))
    chunks: list[bytes] = []
    size = raw = 0
    async for chunk in response.aiter_raw():
        raw += len(chunk)
        part = chunk if inflater is None else inflater.feed(chunk, limit - size + 1)
        size += len(part)
        if size > limit or raw > limit:
            raise _too_large(limit)
        chunks.append(part)
    if inflater is not None:
        tail = inflater.flush()
        if size + len(tail) > limit:
            raise _too_large(limit)
        chunks.append(tail)
    return b"".join(chunks)


class _Inflater:
    """Bounded gzip/deflate decoding: never produces more than the caller has room for."""

    def __init__(self, gzip: bool) -> None:
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)
        self._may_be_raw = not gzip  # some servers send "deflate" without the zlib header

    @classmethod
    def for_encoding(cls, encoding: str) -> _Inflater | None:
        name = encoding.strip().lower()
        if name in ("", "identity"):
            return None
        if name in ("gzip", "x-gzip", "deflate"):
            return cls(gzip=name != "deflate")
        raise EgressFailed(f"unsupported response content-encoding {name[:32]!r}")

    def feed(self, chunk: bytes, room: int) -> bytes:
        out: bytes | None = None
        with suppress(zlib.error):
            out = self._zlib.decompress(chunk, room)
        if out is None and self._may_be_raw:
            self._zlib, self._may_be_raw = zlib.decompressobj(-zlib.MAX_WBITS), False
            return self.feed(chunk, room)
        self._may_be_raw = False
        if out is None:
            raise EgressFailed("response body is not valid gzip/deflate data")
        return out

    def flush(self) -> bytes:
        return self._zlib.flush()


def _result(answer: _Answer) -> dict[str, Any]:
    """Plain data for the tenant: never an httpx object (``api_02``)."""
    content_type = answer.headers.get("content-type", "")
    text = answer.body.decode(_charset(content_type), errors="replace")
    return {
        "status": answer.status,
        "headers": answer.headers,
        "text": text,
        "json": _json(text, content_type),
    }


# Charsets decoded as declared; anything else is read as UTF-8. Decoding runs on the
# supervisor's event loop, so only codecs with linear-time decoders are allowed (punycode,
# for one, is quadratic: a 1 MiB body would stall every tenant for half a minute).
_CHARSETS = frozenset(
    codecs.lookup(name).name
    for name in (
        "utf-8",
        "utf-16",
        "utf-16-le",
        "utf-16-be",
        "utf-32",
        "ascii",
        "latin-1",
        "iso-8859-2",
        "iso-8859-15",
        "cp1250",
        "cp1251",
        "cp1252",
        "koi8-r",
        "shift_jis",
        "euc-jp",
        "iso-2022-jp",
        "gb2312",
        "gbk",
        "gb18030",
        "big5",
        "euc-kr",
    )
)


def _charset(content_type: str) -> str:
    """The declared charset if it is on the allowlist of text encodings, else UTF-8."""
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            try:
                name = codecs.lookup(value.strip().strip("\"'")).name
            except (LookupError, ValueError):
                return "utf-8"
            return name if name in _CHARSETS else "utf-8"
    return "utf-8"


def _json(text: str, content_type: str) -> Any:
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime != "application/json" and not mime.endswith("+json"):
        return None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
