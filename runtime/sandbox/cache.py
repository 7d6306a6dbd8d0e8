"""``api.cache``: a small per-tenant cache with Auth0's limits (AUTH0_REFERENCE.md §1.3).

Auth0's ``api.cache.set(key, value, {ttl, expires_at})`` stores a *string*; records live
15 minutes by default and at most 24 hours, at most 20 per trigger, keys ≤ 64 bytes, values
≤ 4 KB, keys plus values ≤ 8 KB, and the whole thing is best effort (records may be evicted).

:class:`ActionCache` validates what the (untrusted) worker sent and works out the expiry; a
:class:`CacheStore` keeps the records. The namespace is the tenant id the *supervisor* passes,
never anything from the worker, so tenant B cannot name tenant A's keys. Values are stored and
returned as the tenant's own string: nothing is ever unpickled or evaluated (``api_08``).

Eviction, when a new key would break the entry or byte limit: expired records first, then the
record that expires soonest (ties: the oldest write). Those carry the least remaining value,
and the tenant's long-lived records (tokens, say) survive churn of short-lived ones.

Only :class:`MemoryCacheStore` exists today; a Redis store can implement the same Protocol.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from runtime.sandbox.services import ApiRefused

__all__ = [
    "DEFAULT_TTL_MS",
    "MAX_ENTRIES",
    "MAX_KEY_BYTES",
    "MAX_TENANT_BYTES",
    "MAX_TTL_MS",
    "MAX_VALUE_BYTES",
    "ActionCache",
    "CacheRecord",
    "CacheRefused",
    "CacheStore",
    "MemoryCacheStore",
]

MAX_KEY_BYTES = 64
MAX_VALUE_BYTES = 4 * 1024
MAX_TENANT_BYTES = 8 * 1024
MAX_ENTRIES = 20
DEFAULT_TTL_MS = 15 * 60 * 1000
MAX_TTL_MS = 24 * 60 * 60 * 1000

_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_SWEEP_EVERY_MS = 60_000


class CacheRefused(ApiRefused):
    """A cache call with a bad key, value or lifetime."""


@dataclass(frozen=True, slots=True)
class CacheRecord:
    """One stored value; ``expires_at`` is epoch milliseconds, ``written`` orders ties."""

    value: str
    expires_at: int
    written: int = 0

    @property
    def size(self) -> int:
        return len(self.value.encode())

    def public(self) -> dict[str, Any]:
        """What ``api.cache.get``/``set`` return: plain JSON data."""
        return {"value": self.value, "expires_at": self.expires_at}


class CacheStore(Protocol):
    """Where records live. Implementations enforce :data:`MAX_ENTRIES`/:data:`MAX_TENANT_BYTES`.

    ``namespace`` is the tenant id from the supervisor; ``now_ms`` is the caller's clock, so
    expiry is decided by one clock whatever the store.
    """

    async def get(self, namespace: str, key: str, now_ms: int) -> CacheRecord | None:
        """The live record under ``key``, or None."""
        ...

    async def put(self, namespace: str, key: str, record: CacheRecord, now_ms: int) -> None:
        """Store ``record`` under ``key``, evicting others if the namespace would overflow."""
        ...

    async def delete(self, namespace: str, key: str) -> bool:
        """Remove ``key``; True when something was there."""
        ...


class MemoryCacheStore:
    """An in-process :class:`CacheStore`: a dict per namespace. Atomic under asyncio."""

    def __init__(self) -> None:
        self._spaces: dict[str, dict[str, CacheRecord]] = {}
        self._next_sweep = 0

    async def get(self, namespace: str, key: str, now_ms: int) -> CacheRecord | None:
        self._maybe_sweep(now_ms)
        space = self._spaces.get(namespace, {})
        record = space.get(key)
        if record is None or record.expires_at <= now_ms:
            if record is not None:
                del space[key]
            return None
        return record

    async def put(self, namespace: str, key: str, record: CacheRecord, now_ms: int) -> None:
        self._maybe_sweep(now_ms)
        space = self._spaces.setdefault(namespace, {})
        space.pop(key, None)
        _drop_expired(space, now_ms)
        need = len(key) + record.size
        used = sum(len(k) + r.size for k, r in space.items())
        # Soonest to expire first; among equals, the oldest write.
        victims = sorted(space, key=lambda k: (space[k].expires_at, space[k].written))
        while victims and (len(space) + 1 > MAX_ENTRIES or used + need > MAX_TENANT_BYTES):
            victim = victims.pop(0)
            used -= len(victim) + space.pop(victim).size
        space[key] = record

    async def delete(self, namespace: str, key: str) -> bool:
        space = self._spaces.get(namespace)
        if space is None or space.pop(key, None) is None:
            return False
        if not space:
            del self._spaces[namespace]
        return True

    def _maybe_sweep(self, now_ms: int) -> None:
        """Drop expired records of every tenant now and then: idle tenants hold no memory."""
        if now_ms < self._next_sweep:
            return
        self._next_sweep = now_ms + _SWEEP_EVERY_MS
        for namespace in list(self._spaces):
            space = self._spaces[namespace]
            _drop_expired(space, now_ms)
            if not space:
                del self._spaces[namespace]


def _drop_expired(space: dict[str, CacheRecord], now_ms: int) -> None:
    for key in [k for k, r in space.items() if r.expires_at <= now_ms]:
        del space[key]


class ActionCache:
    """Validate ``api.cache`` calls and work out lifetimes; records go to a :class:`CacheStore`.

    ``clock`` returns epoch seconds (``time.time``); tests pass their own.
    """

    def __init__(
        self, store: CacheStore | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._store: CacheStore = store if store is not None else MemoryCacheStore()
        self._clock = clock
        self._writes = 0

    async def get(self, tenant: str, key: object) -> dict[str, Any] | None:
        """``{"value": str, "expires_at": epoch-ms}`` or None."""
        record = await self._store.get(_tenant(tenant), _key(key), self._now_ms())
        return None if record is None else record.public()

    async def set(
        self,
        tenant: str,
        key: object,
        value: object,
        *,
        ttl: object = None,
        expires_at: object = None,
    ) -> dict[str, Any]:
        """Store a string for ``ttl`` ms (default 15 min) or until ``expires_at`` (epoch ms).

        With both, the earlier wins; the lifetime is capped at 24 h. Returns the stored record.
        """
        namespace, name = _tenant(tenant), _key(key)
        if type(value) is not str:
            raise CacheRefused(
                f"cache value must be a string (got {type(value).__name__}); "
                "store JSON text, e.g. json.dumps(value)"
            )
        if _utf8_size(value) > MAX_VALUE_BYTES:
            raise CacheRefused(f"cache value is larger than {MAX_VALUE_BYTES} bytes (UTF-8)")
        now = self._now_ms()
        expiry = now + DEFAULT_TTL_MS if ttl is None else now + _millis(ttl, "ttl")
        if expires_at is not None:
            at = _millis(expires_at, "expires_at")
            if at <= now:
                raise CacheRefused("expires_at must be in the future (epoch milliseconds)")
            expiry = min(expiry, at) if ttl is not None else at
        expiry = min(expiry, now + MAX_TTL_MS)
        self._writes += 1
        record = CacheRecord(value=value, expires_at=expiry, written=self._writes)
        await self._store.put(namespace, name, record, now)
        return record.public()

    async def delete(self, tenant: str, key: object) -> bool:
        """Remove ``key``; True when it was there."""
        return await self._store.delete(_tenant(tenant), _key(key))

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _tenant(tenant: str) -> str:
    # Supervisor-supplied; a bad one is a host bug, not the tenant's fault.
    if type(tenant) is not str or not tenant:
        raise TypeError("tenant must be a non-empty str supplied by the supervisor")
    return tenant


def _key(key: object) -> str:
    if type(key) is not str:
        raise CacheRefused(f"cache key must be a string (got {type(key).__name__})")
    if not _KEY.fullmatch(key):
        raise CacheRefused(f"cache key must be 1-{MAX_KEY_BYTES} characters of A-Z a-z 0-9 _ . : -")
    return key


def _millis(value: object, name: str) -> int:
    """A positive whole number of milliseconds from an int or a finite float."""
    if type(value) is float and math.isfinite(value):
        value = int(value)
    if type(value) is not int or value <= 0:
        raise CacheRefused(f"{name} must be a positive number of milliseconds")
    return value


def _utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8; lone surrogates (which JSON can carry) are refused."""
    if len(text) > MAX_VALUE_BYTES:  # each character is at least one byte
        return len(text)
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        size = -1
    if size < 0:
        raise CacheRefused("cache value must be valid Unicode text (no lone surrogates)")
    return size
