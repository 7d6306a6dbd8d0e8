"""Name lookups for tenant requests: asynchronous (c-ares through aiodns), bounded per tenant.

``loop.getaddrinfo`` runs ``socket.getaddrinfo`` on asyncio's default thread pool, shared by
everything in the process, and a timeout only stops *waiting*: the thread stays blocked until
the system resolver gives up. One tenant resolving names whose servers never answer would
hold every thread and stall DNS (and any other default-pool user) for all tenants. So:

* :class:`AresResolver` asks c-ares, which waits on sockets, not threads, and abandons a query
  after its own ``timeout`` x ``tries``;
* :class:`DnsBulkhead` wraps any resolver: each lookup is bounded by the request's remaining
  time, a tenant has at most ``per_tenant`` lookups in flight (an abandoned one keeps its slot
  until the resolver ends it, so waiting it out does not multiply a tenant's share), and a
  name that failed is not asked again for a while (a small negative cache per tenant).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

import aiodns

__all__ = ["AresResolver", "DnsBulkhead", "LookupFailed", "Resolver"]

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> IP strings``; raises ``OSError`` (or returns ``[]``) for no answer."""

_NEGATIVE_TTL = 30.0  # seconds a failed name stays failed for the tenant that asked
_NEGATIVE_ENTRIES = 4096  # failed (tenant, name) pairs remembered, oldest dropped first
_ABANDON_AFTER = 30.0  # an injected resolver that never returns is cancelled after this


class LookupFailed(Exception):
    """No usable answer (none, an error, out of time, or too many lookups in flight)."""


class _Busy(LookupFailed):
    """The tenant's lookup slots stayed full until the deadline (the name did not fail)."""


class AresResolver:
    """c-ares lookups on the running loop (A and AAAA, ``/etc/hosts`` first, as the system).

    ``nameservers`` (``"ip"`` or ``"ip:port"``) replaces the system's list; tests point it at
    127.0.0.1. The channel is made on first use, in the loop that uses it.
    """

    def __init__(
        self,
        nameservers: Sequence[str] = (),
        *,
        timeout: float = 2.0,
        tries: int = 2,
    ) -> None:
        self._nameservers = list(nameservers)
        self._timeout = timeout
        self._tries = tries
        self._channel: aiodns.DNSResolver | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        if self._channel is None or self._loop is not loop:
            self._channel = aiodns.DNSResolver(
                self._nameservers or None, loop=loop, timeout=self._timeout, tries=self._tries
            )
            self._loop = loop
        try:
            answer = await self._channel.getaddrinfo(
                host, port=port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except aiodns.error.DNSError as exc:
            raise OSError(f"lookup of {host} failed: {exc.args[-1]}") from None
        found = (node.addr[0] for node in answer.nodes)
        return list(dict.fromkeys(a.decode() if type(a) is bytes else str(a) for a in found))

    async def aclose(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


@dataclass(eq=False)
class _Slots:
    free: asyncio.Semaphore
    users: int = 0  # waiting or holding: the entry is dropped at zero


@dataclass(eq=False)
class DnsBulkhead:
    """Per-tenant limits around a :data:`Resolver` (see the module docstring)."""

    resolver: Resolver
    per_tenant: int = 4
    clock: Callable[[], float] = time.monotonic
    _slots: dict[str, _Slots] = field(default_factory=dict)
    _failed: OrderedDict[tuple[str, str], float] = field(default_factory=OrderedDict)
    _lookups: set[asyncio.Task[list[str]]] = field(default_factory=set)

    async def resolve(self, tenant: str, host: str, port: int, deadline: float) -> list[str]:
        """The answers for ``host`` before ``deadline`` (``time.monotonic``); LookupFailed."""
        key = (tenant, host)
        until = self._failed.get(key)
        if until is not None:
            if until > self.clock():
                raise LookupFailed(f"{host} failed recently")
            del self._failed[key]
        slots = self._slots.get(tenant) or self._slots.setdefault(
            tenant, _Slots(asyncio.Semaphore(self.per_tenant))
        )
        slots.users += 1
        try:
            return await self._lookup(slots, key, port, deadline)
        except _Busy:
            raise
        except LookupFailed:
            self._remember_failure(key)
            raise
        finally:
            slots.users -= 1
            if slots.users == 0:
                del self._slots[tenant]

    async def _lookup(
        self, slots: _Slots, key: tuple[str, str], port: int, deadline: float
    ) -> list[str]:
        remaining = deadline - time.monotonic()
        try:
            async with asyncio.timeout(max(remaining, 0)):
                await slots.free.acquire()
        except TimeoutError:
            raise _Busy(f"too many lookups in flight for {key[1]}") from None
        slots.users += 1  # held by the lookup itself until it ends, even if we stop waiting
        lookup = asyncio.ensure_future(self.resolver(key[1], port))
        self._lookups.add(lookup)
        watchdog = asyncio.get_running_loop().call_later(_ABANDON_AFTER, lookup.cancel)

        def ended(task: asyncio.Task[list[str]]) -> None:
            watchdog.cancel()
            self._lookups.discard(task)
            slots.free.release()
            slots.users -= 1
            if slots.users == 0 and self._slots.get(key[0]) is slots:
                del self._slots[key[0]]
            if not task.cancelled():
                task.exception()  # retrieved: no "never retrieved" noise for abandoned ones

        lookup.add_done_callback(ended)
        try:
            done, _ = await asyncio.wait({lookup}, timeout=max(deadline - time.monotonic(), 0))
        except asyncio.CancelledError:  # the request's own timeout: the name was too slow
            if not lookup.done():
                self._remember_failure(key)
            raise
        if not done:
            raise LookupFailed(f"lookup of {key[1]} timed out")
        if lookup.cancelled():
            raise LookupFailed(f"lookup of {key[1]} was abandoned")
        error = lookup.exception()
        if error is not None:
            if not isinstance(error, OSError | UnicodeError):
                raise error
            raise LookupFailed(str(error)) from None
        answers = lookup.result()
        if type(answers) is not list or not answers:
            raise LookupFailed(f"no address for {key[1]}")
        return answers

    def _remember_failure(self, key: tuple[str, str]) -> None:
        self._failed[key] = self.clock() + _NEGATIVE_TTL
        self._failed.move_to_end(key)
        while len(self._failed) > _NEGATIVE_ENTRIES:
            self._failed.popitem(last=False)

    async def aclose(self) -> None:
        """Cancel lookups still running and close the resolver if it can be closed."""
        for lookup in list(self._lookups):
            lookup.cancel()
        close = getattr(self.resolver, "aclose", None)
        if close is not None:
            with suppress(Exception):
                await close()
