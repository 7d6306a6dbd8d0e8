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

    __slots__ = ("_held", "_live", "_total", "_waiting", "roomy", "share")

    def __init__(self, pool_size: int) -> None:
        if pool_size < 1:
            raise ValueError("a pool has at least one connection")
        self.share = share_of(pool_size)
        # past its share, a tenant takes a connection only while fewer than this are in use
        self.roomy = max(self.share, pool_size - self.share)
        self._held: dict[str, int] = {}
        self._total = 0
        # each waiting tenant's waiters in order (one that gave up stays until it is reached:
        # removing it from the middle would cost as much as the queue is long), the tenants in
        # the order they began to wait
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._live: Counter[str] = Counter()  # waiters that still wait, by tenant

    @property
    def busy(self) -> bool:
        """Whether a request holds or waits for a connection here."""
        return bool(self._total or self._live)

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
        if not self._live[tenant] and self._fits(tenant):
            self._take(tenant)
            return True
        return False

    async def take(self, tenant: str, wait: float) -> None:
        """Take a connection, waiting up to ``wait`` seconds behind the tenant's earlier
        requests; TimeoutError when none came."""
        if self.try_take(tenant):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(tenant, deque()).append(waiter)
        self._live[tenant] += 1
        try:
            async with asyncio.timeout(wait):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():  # handed one as we gave up
                self.give_back(tenant)
            else:
                waiter.cancel()
                self._gone(tenant)
            raise

    def give_back(self, tenant: str) -> None:
        """Release a connection, and hand connections to the waiters that fit now, in order:
        each waiting tenant's first ones, as long as they fit (a cost in the waiting tenants,
        not in their waiters)."""
        held = self._held.get(tenant, 0) - 1
        if held > 0:
            self._held[tenant] = held
        else:
            self._held.pop(tenant, None)
        self._total -= 1
        for waiting in list(self._waiting):
            queue = self._waiting[waiting]
            while queue and (queue[0].done() or self._fits(waiting)):
                waiter = queue.popleft()
                if not waiter.done():
                    self._take(waiting)
                    self._gone(waiting)
                    waiter.set_result(None)
            if not queue:
                del self._waiting[waiting]

    def _gone(self, tenant: str) -> None:
        """One of ``tenant``'s waiters no longer waits (served, or gave up)."""
        self._live[tenant] -= 1
        if not self._live[tenant]:
            del self._live[tenant]
