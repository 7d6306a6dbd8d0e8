"""Pooled HTTP for provider plugins: one aiohttp session per provider, bound to its event loop.

Why aiohttp and not httpx (the first design's choice): ``bench/http_clients.py`` measured, on this
project's 2-core machines against one local server, bare aiohttp at ~12,600 requests/s with
50 in flight; httpx 0.28's ``AsyncClient`` *collapsed* to ~1,000/s (slower than one at a time:
encode/httpx#3215) and httpx over the httpx-aiohttp transport reached ~4,900/s (0.38x). So
provider plugins speak aiohttp through this thin layer, which adds what every plugin needs:

- a per-request time budget (the attempt's ``PhoneMessage.timeout``);
- transport failures classified once, by whether the request may have reached the provider
  (:func:`transport_error`): a refused connection was not handed off, a timeout after sending
  may have been;
- an *observer* (:class:`HttpObserver`), passed explicitly to :meth:`PooledHttp.send` for one
  attempt, that sees each exchange and may answer a request itself without the network:
  recordings capture exchanges through it, and replays answer from them. Without one (every
  tenant that does not record) a request costs nothing more.

Requests are never retried here: a retry may deliver a second code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import aiohttp
import orjson

from runtime.errors import ProviderError
from runtime.masking import MASK
from runtime.tenant_shares import TenantShares

__all__ = [
    "HttpObserver",
    "HttpRequest",
    "HttpResponse",
    "PooledHttp",
    "client_timeout",
    "form_urlencode",
    "redact",
    "tenant_busy",
    "transport_error",
    "wait_for_share",
]

REDACTED = MASK  # the one mask (runtime.masking)

# Each UTF-8 byte as ``urllib.parse.quote_plus`` writes it: unreserved bytes as themselves,
# a space as ``+``, anything else as ``%XX``.
_FORM_BYTE = [
    chr(b)
    if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "_.-~")
    else "+"
    if b == 0x20
    else f"%{b:02X}"
    for b in range(256)
]
MAX_CONNECT_TIMEOUT = 5.0
_KEPT_ORIGINS = 256  # origins whose tenants' shares a pool keeps before it lets idle ones go


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request as a provider plugin builds it (the body already encoded)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(cls, url: str, payload: Any, headers: Mapping[str, str] | None = None) -> HttpRequest:
        """A POST with a JSON body."""
        return cls(
            "POST",
            url,
            {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})},
            orjson.dumps(payload),
        )

    @classmethod
    def form(
        cls, url: str, fields: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> HttpRequest:
        """A POST with an ``application/x-www-form-urlencoded`` body."""
        return cls(
            "POST",
            url,
            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
            form_urlencode(fields).encode("ascii"),
        )


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A provider's answer, read whole (provider answers are small)."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; raise ``ValueError`` when it is not."""
        return orjson.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class HttpObserver(Protocol):
    """Sees the HTTP exchanges of one attempt: passed to :meth:`PooledHttp.send` (and, through
    a provider's ``send(..., observer=...)``, by the pipeline for a recording tenant, or by a
    replay)."""

    def answer(self, request: HttpRequest) -> HttpResponse | None:
        """A response to use instead of the network (replays), or None to send the request.

        Raising here fails the request without sending it (a replay's divergence).
        """
        ...

    def record(
        self,
        request: HttpRequest,
        response: HttpResponse | None,
        error: BaseException | None,
        seconds: float,
    ) -> None:
        """Called after each exchange, with its response or the error that ended it."""
        ...


class PooledHttp:
    """The pooled HTTP client of one provider plugin.

    ``label`` names the provider in error messages (``"Vonage"``). The session is created in
    the running loop on first use and replaced when a later call runs in another loop (a
    session cannot cross loops). ``max_connections`` caps the pool per host; its last quarter
    is kept for tenants within their share (:mod:`runtime.tenant_shares`), so a tenant whose
    account answers slowly never holds the connections every other tenant needs.
    """

    def __init__(self, label: str, *, max_connections: int = 100) -> None:
        self.label = label
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._shares: dict[str, TenantShares] = {}  # by origin, as aiohttp pools by host
        self._shares_loop: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"PooledHttp({self.label!r})"

    async def send(
        self,
        request: HttpRequest,
        *,
        budget: float,
        secrets: tuple[str, ...] = (),
        observer: HttpObserver | None = None,
        tenant: str | None = None,
    ) -> HttpResponse:
        """Send ``request`` within ``budget`` seconds; raise :class:`ProviderError` when no
        answer came (``secrets`` are redacted from its message). ``observer`` sees the
        exchange and may answer it instead of the network. ``tenant``'s requests past its
        share of the pool wait while the pool's last quarter is all that is left."""
        if not budget > 0:
            raise ProviderError(
                "timeout", "no time left for this attempt", retryable=True, handed_off=False
            )
        shares = self._shares_for(request.url)
        if tenant is not None and not shares.try_take(tenant):
            budget = await wait_for_share(shares, tenant, budget, self.label)
        try:
            if observer is not None:
                return await self._send_observed(observer, request, budget, secrets)
            try:
                return await self._send(request, budget)
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                raise transport_error(self.label, exc, secrets) from None
        finally:
            if tenant is not None:
                shares.give_back(tenant)

    async def _send_observed(
        self, observer: HttpObserver, request: HttpRequest, budget: float, secrets: tuple[str, ...]
    ) -> HttpResponse:
        started = time.perf_counter()
        response: HttpResponse | None = None
        error: BaseException | None = None
        try:
            response = observer.answer(request)
            if response is None:
                response = await self._send(request, budget)
            return response
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            error = transport_error(self.label, exc, secrets)
            raise error from None
        except BaseException as exc:
            error = exc
            raise
        finally:
            observer.record(request, response, error, time.perf_counter() - started)

    async def _send(self, request: HttpRequest, budget: float) -> HttpResponse:
        session = self._session_for_loop()
        async with session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.body or None,
            timeout=client_timeout(budget),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            return HttpResponse(answer.status, answer.headers, body)

    def _session_for_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._loop is not loop:
            session = self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=self._max_connections),
                skip_auto_headers=("User-Agent",),
                headers={"User-Agent": "phone-actions"},
            )
            self._loop = loop
        return session

    def _shares_for(self, url: str) -> TenantShares:
        """The tenants' shares of the pool of ``url``'s origin (aiohttp's ``limit_per_host``:
        tenants on other hosts of the same plugin never count), in this loop (a new loop gets
        a new session, and new shares)."""
        loop = asyncio.get_running_loop()
        if self._shares_loop is not loop:
            self._shares = {}
            self._shares_loop = loop
        scheme, _, rest = url.partition("://")
        origin = f"{scheme}://{rest.split('/', 1)[0]}"
        shares = self._shares.get(origin)
        if shares is None:
            if len(self._shares) >= _KEPT_ORIGINS:  # tenants' hosts come and go: keep the busy
                self._shares = {o: kept for o, kept in self._shares.items() if kept.busy}
            shares = self._shares[origin] = TenantShares(self._max_connections)
        return shares

    async def aclose(self) -> None:
        """Close the pooled session; a later send opens a new one."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


async def wait_for_share(shares: TenantShares, tenant: str, budget: float, label: str) -> float:
    """Wait for a connection ``tenant`` may take, within the part of ``budget`` an attempt may
    spend connecting: the budget left, or :func:`tenant_busy` (nothing was sent)."""
    wait = min(budget / 2, MAX_CONNECT_TIMEOUT)
    started = time.monotonic()
    try:
        await shares.take(tenant, wait)
    except TimeoutError:
        raise tenant_busy(label, shares.share, wait) from None
    return budget - (time.monotonic() - started)


def tenant_busy(label: str, share: int, waited: float) -> ProviderError:
    """A request that found its tenant's share of a pool in use for its whole wait."""
    return ProviderError(
        "tenant_busy",
        f"{label}: this tenant already had {share} requests or more in flight on this node (its "
        f"share of a busy pool of connections); this one waited {waited:g} s and was not sent",
        retryable=True,
        handed_off=False,
    )


@lru_cache(maxsize=64)  # ClientTimeout is immutable; budgets repeat
def client_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """aiohttp timeouts for one attempt of ``seconds``.

    Connecting gets at most half the budget (and 5 s): when it equals the total, the total
    fires first and a connect timeout looks like a timeout *after* hand-off, which would
    forbid a fallback although nothing reached the provider.
    """
    connect = min(seconds / 2, MAX_CONNECT_TIMEOUT)
    return aiohttp.ClientTimeout(total=seconds, connect=connect, sock_connect=connect)


_FORM_ASCII = {b: _FORM_BYTE[b] for b in range(128)}  # a str.translate table


def _form_quote(text: str) -> str:
    if text.isascii():
        return text.translate(_FORM_ASCII)
    return "".join(map(_FORM_BYTE.__getitem__, text.encode()))


def form_urlencode(fields: Mapping[str, str]) -> str:
    """``urllib.parse.urlencode(fields)`` for string fields, by translation tables: the same
    text, several times faster (a form body is built for every message)."""
    return "&".join(_form_quote(key) + "=" + _form_quote(value) for key, value in fields.items())


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret (the code, a key, a token) replaced."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def transport_error(label: str, exc: BaseException, secrets: tuple[str, ...] = ()) -> ProviderError:
    """Classify a failure with no HTTP answer by whether the request may have arrived.

    Not handed off (the pipeline may fall back): a bad URL, a refused or timed-out connection.
    Handed off (no fallback, no second code): a timeout or a lost connection after sending.
    """
    detail = redact(f"{type(exc).__name__}: {exc}".removesuffix(": "), secrets)
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return ProviderError(
            "configuration_error",
            f"invalid {label} URL ({detail})",
            retryable=False,
            handed_off=False,
        )
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        code, message, handed_off = "connect_timeout", "could not connect in time", False
    elif isinstance(exc, aiohttp.ClientConnectorError):
        code, message, handed_off = "connection_error", "could not connect", False
    elif isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        code, message, handed_off = "timeout", "no answer in time", True
    else:
        code, message, handed_off = "disconnected", "connection lost after sending", True
    suffix = f"; {label} may have accepted it" if handed_off else ""
    return ProviderError(
        code,
        f"{message} to {label} ({detail}){suffix}",
        retryable=True,
        handed_off=handed_off,
    )
