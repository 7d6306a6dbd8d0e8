"""Each tenant's share of a pool of connections that tenants share.

A provider plugin keeps one pool of connections per provider (per host), used by every tenant
whose messages go there; its size is bounded (100 connections by default). A tenant whose
account at the provider answers slowly would otherwise hold them all: every other tenant's
request then waits for a connection until its connect timeout and falls back to the default
sender, its code never sent by its own provider (a fault test: one slow Twilio account made
another tenant's 20 codes fall back). So a tenant may hold at most a share of a pool (a
quarter: :data:`SHARE_OF_POOL`); its requests past that wait for one of its own, within the
time its attempt may spend connecting, and are refused (nothing sent, so the fallback rules
apply) when none comes.

The check that costs nothing when a slot is free (:meth:`TenantShares.try_take`) runs on every
request; only a tenant at its share waits, in FIFO order. Bound to the event loop it is made
in, like the pool it guards.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["SHARE_OF_POOL", "TenantShares", "share_of"]

SHARE_OF_POOL = 4
"""A tenant may hold one pool connection in this many (a quarter)."""


def share_of(pool_size: int) -> int:
    """The connections one tenant may hold of a pool of ``pool_size`` (at least one)."""
    return max(1, pool_size // SHARE_OF_POOL)


class TenantShares:
    """Counts the requests each tenant has in flight through one pool; at most ``share``."""

    __slots__ = ("_held", "_waiting", "share")

    def __init__(self, share: int) -> None:
        if share < 1:
            raise ValueError("a share is at least one connection")
        self.share = share
        self._held: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    def held(self, tenant: str) -> int:
        """The requests ``tenant`` has in flight (for tests and metrics)."""
        return self._held.get(tenant, 0)

    def try_take(self, tenant: str) -> bool:
        """Take a slot now if one is free and nobody of this tenant waits before us."""
        held = self._held.get(tenant, 0)
        if held < self.share and tenant not in self._waiting:
            self._held[tenant] = held + 1
            return True
        return False

    async def take(self, tenant: str, wait: float) -> None:
        """Take a slot, waiting up to ``wait`` seconds behind the tenant's earlier requests;
        TimeoutError when none came."""
        if self.try_take(tenant):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiting.setdefault(tenant, deque())
        queue.append(waiter)
        try:
            async with asyncio.timeout(wait):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():  # handed a slot as we gave up
                self.give_back(tenant)
            else:
                waiter.cancel()
                if waiter in queue:
                    queue.remove(waiter)
                if not queue and self._waiting.get(tenant) is queue:
                    del self._waiting[tenant]
            raise

    def give_back(self, tenant: str) -> None:
        """Release a slot: to the tenant's first waiter still waiting, else to the pool."""
        queue = self._waiting.get(tenant)
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: the count stays
                if not queue:
                    del self._waiting[tenant]
                return
        self._waiting.pop(tenant, None)
        held = self._held.get(tenant, 0) - 1
        if held > 0:
            self._held[tenant] = held
        else:
            self._held.pop(tenant, None)
