"""Each tenant's share of a pool of connections that tenants share.

A provider plugin keeps one pool of connections per provider (per host), used by every tenant
whose messages go there; its size is bounded (100 connections by default). A tenant whose
account at the provider answers slowly would otherwise hold them all: every other tenant's
request then waits for a connection until its connect timeout and falls back to the default
sender, its code never sent by its own provider (a fault test: one slow Twilio account made
another tenant's 20 codes fall back).

So the last quarter of a pool (:data:`SHARE_OF_POOL`) is kept for tenants within their share:
a tenant may always hold up to a quarter of the pool, and more only while fewer than three
quarters are in use. A busy tenant alone uses three quarters; a hung one never takes the
quarter the others need. A request that may not take a connection waits for one within the
time its attempt may spend connecting, in order, and is refused (nothing sent, so the fallback
rules apply) when none comes.

The check that costs nothing when the pool has room (:meth:`TenantShares.try_take`) runs on
every request; only a request that does not fit waits. Bound to the event loop it is made in,
like the pool it guards.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque

__all__ = ["SHARE_OF_POOL", "TenantShares", "share_of"]

SHARE_OF_POOL = 4
"""A tenant's share is one connection of a pool in this many (a quarter), and that much of the
pool is kept for tenants within their share."""


def share_of(pool_size: int) -> int:
    """The connections a tenant may always hold of a pool of ``pool_size`` (at least one)."""
    return max(1, pool_size // SHARE_OF_POOL)


class TenantShares:
    """Counts the requests each tenant has in flight through one pool of ``pool_size``."""

    __slots__ = ("_held", "_total", "_waiting", "_waiting_by", "roomy", "share")

    def __init__(self, pool_size: int) -> None:
        if pool_size < 1:
            raise ValueError("a pool has at least one connection")
        self.share = share_of(pool_size)
        # past its share, a tenant takes a connection only while fewer than this are in use
        self.roomy = max(self.share, pool_size - self.share)
        self._held: dict[str, int] = {}
        self._total = 0
        self._waiting: deque[tuple[str, asyncio.Future[None]]] = deque()
        self._waiting_by: Counter[str] = Counter()

    def held(self, tenant: str) -> int:
        """The requests ``tenant`` has in flight (for tests and metrics)."""
        return self._held.get(tenant, 0)

    def _fits(self, tenant: str) -> bool:
        return self._held.get(tenant, 0) < self.share or self._total < self.roomy

    def _take(self, tenant: str) -> None:
        self._held[tenant] = self._held.get(tenant, 0) + 1
        self._total += 1

    def try_take(self, tenant: str) -> bool:
        """Take a connection now if one fits and none of the tenant's requests waits first."""
        if self._waiting_by[tenant] == 0 and self._fits(tenant):
            self._take(tenant)
            return True
        return False

    async def take(self, tenant: str, wait: float) -> None:
        """Take a connection, waiting up to ``wait`` seconds behind the tenant's earlier
        requests; TimeoutError when none came."""
        if self.try_take(tenant):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (tenant, waiter)
        self._waiting.append(entry)
        self._waiting_by[tenant] += 1
        try:
            async with asyncio.timeout(wait):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():  # handed one as we gave up
                self.give_back(tenant)
            else:
                waiter.cancel()
                self._forget(entry)
            raise

    def give_back(self, tenant: str) -> None:
        """Release a connection, and hand connections to the waiters that fit now, in order."""
        held = self._held.get(tenant, 0) - 1
        if held > 0:
            self._held[tenant] = held
        else:
            self._held.pop(tenant, None)
        self._total -= 1
        self._admit()

    def _admit(self) -> None:
        blocked: set[str] = set()  # a tenant whose first waiter did not fit: its later ones wait
        for entry in list(self._waiting):
            tenant, waiter = entry
            if waiter.done():
                self._forget(entry)
            elif tenant not in blocked and self._fits(tenant):
                self._take(tenant)
                self._forget(entry)
                waiter.set_result(None)
            else:
                blocked.add(tenant)

    def _forget(self, entry: tuple[str, asyncio.Future[None]]) -> None:
        try:
            self._waiting.remove(entry)
        except ValueError:
            return
        self._waiting_by[entry[0]] -= 1
        if not self._waiting_by[entry[0]]:
            del self._waiting_by[entry[0]]
