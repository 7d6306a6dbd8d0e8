"""``api.http``: one tenant HTTP request, made safely by the supervisor (docs/sandbox.md).

The worker only *asks*; everything it sent is re-validated (``api_09``-``api_13``). The jobs
are split by module:

* :mod:`.policy`: params (method, URL, headers, one body) and destination rules (https only
  unless allow-listed, allowed ports, strict host spelling, public addresses only);
* :mod:`.dns`: lookups with c-ares, bounded per tenant, never on asyncio's default pool;
* :mod:`.redirects`: each hop re-checked, re-resolved, re-pinned; no body to another origin;
* :mod:`.decoding`: capped streaming (also after gzip/deflate), charsets from a fixed table;
* :mod:`.wire`: whether a failure is a hand-off, from what happened on the wire.

Here: the host is resolved **once** per hop and the connection goes to that pinned IP, with the
Host header and TLS SNI/verification kept on the name, so DNS rebinding cannot move it; limits
are a per-invocation :class:`InvocationBudget`, a per-tenant sliding-window quota and the
invocation deadline as total timeout.

Connection pooling is per pinned origin (scheme, host, IP, port): a connection verified for one
name is never reused for another name on the same IP. Each origin has small shards (httpx
transports with ≤ ``_PER_SHARD`` connections, never queueing inside httpcore), because httpcore
1.0's pool does O(connections) work per request and collapses under concurrency
(encode/httpx#3215). Requests go straight to a shard's transport, with no ``httpx.AsyncClient``
around it: no cookie jar exists to leak a Set-Cookie between tenants sharing a pool.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import ip_address
from typing import Any

import httpcore._async.http11
import httpx

from runtime.masking import RuntimeText
from runtime.sandbox.host.egress.decoding import read_body, result
from runtime.sandbox.host.egress.dns import AresResolver, DnsBulkhead, LookupFailed, Resolver
from runtime.sandbox.host.egress.policy import (
    METHODS,
    EgressPolicy,
    IPAddress,
    Target,
    host_literal,
    is_public_address,
    parse_request,
    split_entry,
)
from runtime.sandbox.host.egress.redirects import REDIRECTS, Hop, next_hop, shown
from runtime.sandbox.host.egress.wire import Wire, failure
from runtime.sandbox.host.refusals import ApiRefused, EgressDenied, EgressFailed
from runtime.sandbox.shared.contract import SandboxLimits

__all__ = [
    "METHODS",
    "AresResolver",
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

TransportFactory = Callable[[], httpx.AsyncBaseTransport]
"""Makes the transport of one pool shard; requests it sees go to the pinned IP."""

# What every request carries unless the tenant sets it (accept-encoding is reserved): the
# headers an httpx.AsyncClient with our user-agent would send.
_CLIENT_HEADERS = (
    ("Accept", "*/*"),
    ("Connection", "keep-alive"),
    ("user-agent", "phone-actions"),
    ("accept-encoding", "gzip, deflate"),
)
_PER_SHARD = 4  # connections per client: small pools stay cheap (see module docstring)
_MAX_SHARDS = 16  # so at most 64 requests in flight per pinned origin; more wait
_MAX_ORIGINS = 256  # idle origins beyond this are closed, oldest first
_MAX_TRIES = 3  # pinned addresses tried when connecting is refused outright
_WINDOW = 60.0
MAX_RESPONSE_HEADER_BYTES = 16 * 1024
"""The largest response header block read: h11's own default (httpcore raises it to 100 KiB).
h11 parses header lines in Python on the event loop: 100 KiB of one-byte headers (25,000)
cost about 200 ms; real providers answer with one or two KiB. Longer, the call fails like a
broken answer (after the request was written: a hand-off)."""
HEADERS_PER_REQUEST = 100
"""A response with more headers than this counts as one more request of the tenant's minute
quota per this many (``max_requests_per_tenant_per_minute``): the headers a tenant's servers
can make the event loop parse stay bounded per minute, not only per response."""

# Process-wide: every httpx client here reaches tenant-chosen servers (this egress, log
# streams, usage-trigger webhooks); providers use aiohttp, whose limits are lower already.
# h11 checks the limit only on a block still incomplete after a read, and httpcore reads
# 64 KiB at a time: with reads of 8 KiB, no block over 24 KiB is ever parsed.
_HTTP11 = httpcore._async.http11.AsyncHTTP11Connection
_HTTP11.MAX_INCOMPLETE_EVENT_SIZE = MAX_RESPONSE_HEADER_BYTES
_HTTP11.READ_NUM_BYTES = MAX_RESPONSE_HEADER_BYTES // 2


class InvocationBudget:
    """HTTP requests one invocation may still send (each redirect hop is one request)."""

    def __init__(self, max_requests: int) -> None:
        self.max_requests = max_requests
        self.used = 0
        # A request of this invocation was written and answered other than 4xx on a hop the
        # egress followed (a 303 to a status URL): handed off, whatever the final answer.
        self.reached = False

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

    def charge(self, tenant: str, requests: int) -> None:
        """Count ``requests`` more in ``tenant``'s window (a costly answer); the next
        :meth:`take` refuses once the window is full."""
        sent = self._sent.setdefault(tenant, deque())
        now = self._clock()
        sent.extend([now] * min(requests, self._limit))


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
    header_lines: int  # before repeated names were joined


class Egress:
    """Perform tenant HTTP requests under an :class:`EgressPolicy`; one per supervisor.

    ``resolver`` and ``transport_factory`` are seams for tests (no real DNS, no real sockets);
    without a resolver, names are looked up with c-ares (``policy.dns_servers`` or the
    system's). ``clock`` drives the per-tenant quota window.
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
        self._dns = DnsBulkhead(
            resolver or AresResolver(policy.dns_servers),
            per_tenant=policy.dns_lookups_per_tenant,
        )
        self._transport_factory = transport_factory or self._default_transport
        self._quota = _TenantQuota(policy.max_requests_per_tenant_per_minute, clock)
        self._allowed: dict[str, set[int | None]] = {}
        for entry in policy.allow_http_hosts:
            host, port = split_entry(entry)
            self._allowed.setdefault(host, set()).add(port)
        self._origins: OrderedDict[tuple[str, str, str, int], _Origin] = OrderedDict()
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def request(
        self, tenant: str, params: dict[str, Any], *, deadline: float, budget: InvocationBudget
    ) -> dict[str, Any]:
        """``{"status", "headers", "text", "json"}`` for ``params`` (``http.request``).

        ``deadline`` is ``time.monotonic()``-based and bounds everything: DNS, connect, body.
        Raises :class:`EgressDenied` or :class:`EgressFailed`, whose ``maybe_sent`` follows
        the wire (:mod:`.wire`).
        """
        if self._closed:
            raise EgressFailed("HTTP egress is shut down")
        spec = parse_request(params, self._limits)
        now = time.monotonic()
        if spec.timeout is not None:
            deadline = min(deadline, now + spec.timeout)
        if deadline <= now:
            raise EgressFailed("request not sent: no time left before the deadline")
        wire = Wire()
        failed: ApiRefused
        try:
            async with asyncio.timeout(deadline - now):
                hop = Hop(spec.method, spec.url, spec.headers, spec.body)
                return await self._follow(tenant, hop, deadline, budget, wire)
        except TimeoutError:  # may have struck after the request went out
            sent = wire.handed_off(otherwise=True)
            failed = EgressFailed(f"request to {shown(spec.url)} timed out", maybe_sent=sent)
        except ApiRefused as exc:
            sent = wire.handed_off(otherwise=exc.maybe_sent)
            failed = type(exc)(exc.message, maybe_sent=sent)
        except Exception as exc:  # a bug of ours or a library's surprise: the wire decides
            sent = wire.handed_off(otherwise=True)  # unknown: as if it may have gone out
            log.error(  # the traceback stays in the host's log; the tenant sees no detail
                "egress for tenant %s to %s failed unexpectedly: %s",
                RuntimeText(tenant),
                shown(spec.url),
                type(exc).__name__,
                exc_info=True,
            )
            failed = EgressFailed(f"request to {shown(spec.url)} failed", maybe_sent=sent)
        log.info("egress for tenant %s to %s: %s", RuntimeText(tenant), shown(spec.url), failed)
        raise failed

    async def aclose(self) -> None:
        """Close every pooled connection and the resolver; later requests fail."""
        self._closed = True
        origins, self._origins = list(self._origins.values()), OrderedDict()
        for origin in origins:
            for shard in origin.shards:
                await shard.transport.aclose()
        await self._dns.aclose()

    async def _follow(
        self, tenant: str, hop: Hop, deadline: float, budget: InvocationBudget, wire: Wire
    ) -> dict[str, Any]:
        redirects = 0
        while True:
            target = self._target(hop.url)
            budget.take()
            self._quota.take(tenant)
            addresses = await self._addresses(tenant, target, deadline)
            answer = await self._exchange(target, addresses, hop, deadline, wire)
            if answer.header_lines > HEADERS_PER_REQUEST:
                self._quota.charge(tenant, answer.header_lines // HEADERS_PER_REQUEST)
            if answer.location is None:
                budget.reached |= wire.reached
                return result(answer.status, answer.headers, answer.body)
            wire.followed()  # from here on, any failure is a hand-off
            if redirects >= self._policy.max_redirects:
                limit = self._policy.max_redirects
                raise EgressDenied(f"too many redirects (more than {limit}) from {shown(hop.url)}")
            redirects += 1
            hop = next_hop(hop, answer.status, answer.location)

    def _target(self, url: httpx.URL) -> Target:
        """Check scheme, credentials, host, port and (for IP literals) the address."""
        scheme = url.scheme
        if scheme not in ("https", "http"):
            raise EgressDenied(f"URL scheme {scheme[:16]!r} is not allowed; use https")
        if url.userinfo:
            raise EgressDenied("url must not contain credentials (user@host); use a header")
        host = url.raw_host.decode("ascii").lower()
        literal = host_literal(host)
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
        return Target(scheme, host, port, literal, exempt)

    async def _addresses(self, tenant: str, target: Target, deadline: float) -> list[IPAddress]:
        """Resolve once; every address must be public unless the host is allow-listed."""
        if target.literal is not None:
            return [target.literal]
        answers: list[str] = []
        try:
            answers = await self._dns.resolve(tenant, target.host, target.port, deadline)
        except LookupFailed as exc:
            log.info(
                "egress: resolving %s for %s failed: %s", target.host, RuntimeText(tenant), exc
            )
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                addresses.append(ip_address(answer if type(answer) is str else ""))
            except ValueError:
                addresses = []
                break
        if addresses and (target.exempt or all(map(is_public_address, addresses))):
            return list(dict.fromkeys(addresses))
        if answers:
            log.info("egress: %s resolved to %r: refused", target.host, answers)
        # One message for "no answer" and "private answer": tenants must not map internal DNS.
        raise EgressDenied(f"host {target.host} does not resolve to a public address")

    async def _exchange(
        self,
        target: Target,
        addresses: list[IPAddress],
        hop: Hop,
        deadline: float,
        wire: Wire,
    ) -> _Answer:
        """Send to the pinned addresses in turn while connecting is refused outright."""
        tries = addresses[:_MAX_TRIES]
        failed: EgressFailed | None = None
        for n, ip in enumerate(tries):
            async with self._transport(target, ip) as transport:
                remaining = max(deadline - time.monotonic(), 0.001)
                timeout = httpx.Timeout(
                    remaining, connect=min(self._policy.connect_timeout, remaining)
                )
                extensions: dict[str, Any] = {"timeout": timeout.as_dict(), "trace": wire.trace}
                if target.scheme == "https" and target.literal is None:
                    extensions["sni_hostname"] = target.host
                request = httpx.Request(
                    hop.method,
                    _pinned(hop.url, str(ip)),
                    headers=_request_headers(hop.headers, hop.url.netloc.decode("ascii")),
                    content=hop.body,
                    extensions=extensions,
                )
                wire.exchanging()
                try:
                    response = await transport.handle_async_request(request)
                    wire.answered(response.status_code)
                    try:
                        return await self._answer(response, hop.method)
                    finally:
                        await response.aclose()
                except httpx.ConnectError as exc:
                    if n + 1 < len(tries):
                        log.info("egress: connecting to %s failed, next address", target.host)
                        continue
                    failed = _logged(exc, target.host)
                except httpx.HTTPError as exc:
                    failed = _logged(exc, target.host)
            break
        raise failed or EgressFailed(f"could not connect to {target.host}")

    async def _answer(self, response: httpx.Response, method: str) -> _Answer:
        lines = response.headers.multi_items()
        repeated: dict[str, list[str]] = {}
        for name, value in lines:  # joined once at the end: linear in the header lines
            repeated.setdefault(name.lower(), []).append(value)
        headers = {key: ", ".join(values) for key, values in repeated.items()}
        status = response.status_code
        location = headers.get("location") if status in REDIRECTS else None
        if location is not None or method == "HEAD":
            return _Answer(status, headers, b"", location, len(lines))
        body = await read_body(response, headers, self._limits.max_http_response_bytes)
        return _Answer(status, headers, body, None, len(lines))

    @asynccontextmanager
    async def _transport(
        self, target: Target, ip: IPAddress
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


@lru_cache(maxsize=256)
def _pinned(url: httpx.URL, ip: str) -> httpx.URL:
    """``url`` sent to the pinned address (the Host header and SNI keep the name). Few
    entries: the cache is process-wide and tenants choose the URLs."""
    return url.copy_with(host=ip)


def _logged(exc: httpx.HTTPError, host: str) -> EgressFailed:
    log.info("egress to %s failed: %s: %.200s", host, type(exc).__name__, exc)
    return failure(exc, host)
