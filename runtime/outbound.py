"""The service's own HTTP calls to URLs that tenants chose (log-stream sinks, usage-trigger
webhooks): the sandbox egress's address rules, applied when the URL is saved and again when
it is called, so that no tenant can make the service reach its own network.

* Save time (:meth:`OutboundRules.check`): https only, no credentials in the URL, a host
  spelled plainly (``2130706433`` or ``0x7f.1`` are refused, not read as 127.0.0.1), and an
  IP literal must be a public address. A name is not resolved then: its answer can change.
* Send time (:class:`OutboundHttp`): the same checks; then the name is resolved once with
  c-ares behind the egress's per-tenant bulkhead (never ``loop.getaddrinfo`` on asyncio's
  shared thread pool), every answer must be public, and the connection goes to that address
  with the Host header and TLS SNI/verification kept on the name: DNS rebinding cannot move
  it. Redirects are not followed (a 3xx is the receiver's answer), so no hop escapes.

Hosts in ``outbound_allow_hosts`` (local fakes in tests) may be called over plain http and at
any address. Everything the egress provides is imported here and nowhere else in the service.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from functools import cache
from ipaddress import ip_address
from typing import Any

import httpx

from runtime.errors import InvalidInputError
from runtime.sandbox.host.egress.dns import AresResolver, DnsBulkhead, LookupFailed, Resolver
from runtime.sandbox.host.egress.policy import (
    IPAddress,
    host_literal,
    is_public_address,
    parse_url,
    split_entry,
)
from runtime.sandbox.host.refusals import EgressDenied

__all__ = [
    "Answer",
    "AresResolver",
    "OutboundFailed",
    "OutboundHttp",
    "OutboundRefused",
    "OutboundRules",
    "Resolver",
    "TransportFactory",
]

log = logging.getLogger("runtime.outbound")

TransportFactory = Callable[[], httpx.AsyncBaseTransport]
"""Makes the transport of one pinned origin; the requests it sees go to the pinned IP."""

_MAX_ORIGINS = 64  # pinned origins kept open; the oldest idle one is closed beyond this
_CONNECTIONS = 8  # per pinned origin: the job runner's workers bound the calls in flight
_MAX_TRIES = 3  # resolved addresses tried while connecting is refused outright
_READ_AT_MOST = 64 * 1024  # of an answer's body: only the status counts, the rest is dropped


class OutboundRefused(Exception):
    """The URL breaks the outbound rules; nothing was sent. The message is one line."""


class OutboundFailed(Exception):
    """An allowed call failed on the network (it may have reached the receiver)."""


@dataclass(frozen=True, slots=True)
class _Target:
    url: httpx.URL
    scheme: str
    host: str  # lower-case ASCII (IDNA), without brackets
    port: int
    literal: IPAddress | None
    allowed: bool  # in outbound_allow_hosts: http and any address


class OutboundRules:
    """What a tenant's URL may be; ``allow_hosts`` entries are ``host`` (any port),
    ``host:port`` or ``[v6]:port``. A bad entry is a ValueError naming it."""

    def __init__(self, allow_hosts: Iterable[str] = ()) -> None:
        self._allowed: dict[str, set[int | None]] = {}
        for entry in allow_hosts:
            host, port = split_entry(entry)
            self._allowed.setdefault(host, set()).add(port)

    def check(self, url: object, field: str) -> str:
        """``url`` if a tenant may save it, else :class:`InvalidInputError` naming ``field``."""
        try:
            self.target(url)
        except OutboundRefused as exc:
            raise InvalidInputError(str(exc), field=field) from None
        assert isinstance(url, str)
        return url

    def target(self, url: object) -> _Target:
        """Where ``url`` goes, checked; :class:`OutboundRefused` says why not."""
        try:
            parsed = parse_url(url, None)
            host = parsed.raw_host.decode("ascii").lower()
            literal = host_literal(host)
        except EgressDenied as exc:
            raise OutboundRefused(str(exc).removeprefix("url ")) from None
        scheme = parsed.scheme
        if scheme not in ("https", "http"):
            raise OutboundRefused("must be an https:// URL")
        port = parsed.port if parsed.port is not None else (443 if scheme == "https" else 80)
        if not 0 < port < 65536:
            raise OutboundRefused(f"port {port} is not valid")
        ports = self._allowed.get(host, set())
        allowed = None in ports or port in ports
        if scheme == "http" and not allowed:
            raise OutboundRefused(
                "must be an https:// URL (http only for hosts in outbound_allow_hosts)"
            )
        if literal is not None and not allowed and not is_public_address(literal):
            raise OutboundRefused(f"address {host} is not a public address")
        return _Target(parsed, scheme, host, port, literal, allowed)


@dataclass(eq=False)
class _Origin:
    transport: httpx.AsyncBaseTransport
    users: int = 0  # calls using it: never closed while > 0


@dataclass(frozen=True, slots=True)
class Answer:
    """The receiver's answer: only its status matters to the callers."""

    status: int

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(eq=False)
class OutboundHttp:
    """POSTs to tenants' URLs under :class:`OutboundRules`; one per feature and process.

    ``resolver`` and ``transport_factory`` are seams for tests (no real DNS, no sockets but
    127.0.0.1); by default names are looked up with c-ares using the system's name servers.
    """

    rules: OutboundRules
    resolver: Resolver | None = None
    transport_factory: TransportFactory | None = None
    lookups_per_tenant: int = 4
    connect_timeout: float = 5.0
    _dns: DnsBulkhead = field(init=False)
    _origins: OrderedDict[tuple[str, str, str, int], _Origin] = field(
        init=False, default_factory=OrderedDict
    )
    _closed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._dns = DnsBulkhead(self.resolver or AresResolver(), per_tenant=self.lookups_per_tenant)
        if self.transport_factory is None:
            _ssl_context()  # now, at startup, rather than on the loop at the first call

    async def post(
        self, tenant: str, url: str, body: bytes, headers: Mapping[str, str], *, budget: float
    ) -> Answer:
        """POST ``body`` to ``url`` for ``tenant`` within ``budget`` seconds (DNS included).

        Raises :class:`OutboundRefused` (nothing sent) or :class:`OutboundFailed`.
        """
        if self._closed:
            raise OutboundFailed("the service is shutting down")
        target = self.rules.target(url)
        deadline = time.monotonic() + budget
        try:
            async with asyncio.timeout(budget):
                addresses = await self._addresses(tenant, target, deadline)
                return await self._send(target, addresses, body, headers, deadline)
        except TimeoutError:
            raise OutboundFailed(f"no answer within {budget:g} s ({target.host})") from None

    async def aclose(self) -> None:
        """Close every pooled connection and the resolver; later calls fail."""
        self._closed = True
        origins, self._origins = list(self._origins.values()), OrderedDict()
        for origin in origins:
            await origin.transport.aclose()
        await self._dns.aclose()

    async def _addresses(self, tenant: str, target: _Target, deadline: float) -> list[IPAddress]:
        """Resolve once; every address must be public unless the host is allow-listed."""
        if target.literal is not None:
            return [target.literal]
        answers: list[str] = []
        with suppress(LookupFailed):
            answers = await self._dns.resolve(tenant, target.host, target.port, deadline)
        addresses: list[IPAddress] = []
        with suppress(ValueError):
            addresses = [ip_address(a if type(a) is str else "") for a in answers]
        if addresses and (target.allowed or all(map(is_public_address, addresses))):
            return list(dict.fromkeys(addresses))
        if answers:
            log.info("outbound: %s resolved to %r for %s: refused", target.host, answers, tenant)
        # One message for "no answer" and "private answer": tenants must not map internal DNS.
        raise OutboundRefused(f"host {target.host} does not resolve to a public address")

    async def _send(
        self,
        target: _Target,
        addresses: list[IPAddress],
        body: bytes,
        headers: Mapping[str, str],
        deadline: float,
    ) -> Answer:
        """Send to the pinned addresses in turn while connecting is refused outright."""
        tries = addresses[:_MAX_TRIES]
        for n, ip in enumerate(tries):
            remaining = max(deadline - time.monotonic(), 0.001)
            timeout = httpx.Timeout(remaining, connect=min(self.connect_timeout, remaining))
            extensions: dict[str, Any] = {"timeout": timeout.as_dict()}
            if target.scheme == "https" and target.literal is None:
                extensions["sni_hostname"] = target.host
            try:
                request = httpx.Request(
                    "POST",
                    target.url.copy_with(host=str(ip)),
                    headers=[*headers.items(), ("Host", target.url.netloc.decode("ascii"))],
                    content=body,
                    extensions=extensions,
                )
            except (ValueError, UnicodeError, TypeError):
                raise OutboundRefused("a header is not valid (printable ASCII only)") from None
            async with self._transport(target, ip) as transport:
                try:
                    response = await transport.handle_async_request(request)
                    try:
                        await _drain(response)
                    finally:
                        await response.aclose()
                    return Answer(response.status_code)
                except httpx.ConnectError as exc:
                    if n + 1 < len(tries):
                        continue
                    raise OutboundFailed(_why(exc, target.host)) from None
                except httpx.HTTPError as exc:
                    raise OutboundFailed(_why(exc, target.host)) from None
        raise OutboundFailed(f"no address to try ({target.host})")  # pragma: no cover

    @asynccontextmanager
    async def _transport(
        self, target: _Target, ip: IPAddress
    ) -> AsyncIterator[httpx.AsyncBaseTransport]:
        """The pooled transport of this pinned origin: a connection verified for one name is
        never reused for another name on the same address."""
        key = (target.scheme, target.host, str(ip), target.port)
        origin = self._origins.pop(key, None)
        if origin is None:
            factory = self.transport_factory or _default_transport
            origin = _Origin(factory())
        self._origins[key] = origin  # most recently used last
        origin.users += 1
        try:
            idle = [k for k, o in self._origins.items() if o.users == 0]
            for old in idle[: max(len(self._origins) - _MAX_ORIGINS, 0)]:
                await self._origins.pop(old).transport.aclose()
            yield origin.transport
        finally:
            origin.users -= 1


async def _drain(response: httpx.Response) -> None:
    """Read a little of the body so the connection can be kept; a longer one is dropped."""
    if response.is_stream_consumed:
        return
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > _READ_AT_MOST:
            break


def _why(exc: httpx.HTTPError, host: str) -> str:
    log.info("outbound to %s failed: %s: %.200s", host, type(exc).__name__, exc)
    return f"{type(exc).__name__} ({host})"


@cache
def _ssl_context() -> ssl.SSLContext:
    """Made once per process: loading the CA bundle takes milliseconds."""
    return httpx.create_ssl_context(trust_env=False)


def _default_transport() -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(max_connections=_CONNECTIONS, max_keepalive_connections=_CONNECTIONS)
    return httpx.AsyncHTTPTransport(verify=_ssl_context(), trust_env=False, limits=limits)
