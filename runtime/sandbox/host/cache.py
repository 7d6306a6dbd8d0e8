"""``api.cache``: a small cache per tenant and trigger with Auth0's limits.

Auth0's ``api.cache.set(key, value, {ttl, expires_at})`` stores a *string* and answers a
``CacheWriteResult``: ``{type: "success"}``, or ``{type: "error", code}``; it does not throw.
Records live 15 minutes by default and at most 24 hours; at most 20 per trigger, keys up to 64
bytes, values up to 4 KB, keys plus values up to 8 KB; values are "scoped to the Trigger in
which they are set"; the whole thing is best effort (records may be evicted).

Auth0 does not publish its ``code`` values, so ours are in :data:`ERROR_CODES`; each error also
has a one-line ``message`` naming the argument and the limit.

:class:`ActionCache` validates what the (untrusted) worker sent and works out the expiry; a
:class:`CacheStore` keeps the records. The namespace is built from the tenant id and the
trigger that the *supervisor* passes, never from anything the worker says, so tenant B cannot
name tenant A's keys. Only the two phone triggers exist, so one tenant holds at most
``2 x MAX_ENTRIES`` records and ``2 x MAX_TENANT_BYTES`` of keys and values. Values are stored
and returned as the tenant's own string: nothing is ever unpickled or evaluated (``api_08``).

Eviction, when a new key would break the entry or byte limit: expired records first, then the
record that expires soonest (ties: the oldest write). Those carry the least remaining value,
and the tenant's long-lived records (tokens, say) survive churn of short-lived ones.

Only :class:`MemoryCacheStore` exists today; a Redis store can implement the same Protocol.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from runtime.sandbox.host.refusals import CacheRefused
from runtime.sandbox.shared.contract import HANDLERS

__all__ = [
    "DEFAULT_TTL_MS",
    "ERROR_CODES",
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
    "error",
    "key_size",
]

MAX_KEY_BYTES = 64
MAX_VALUE_BYTES = 4 * 1024
MAX_TENANT_BYTES = 8 * 1024  # per tenant and trigger, as Auth0's "per trigger"
MAX_ENTRIES = 20
DEFAULT_TTL_MS = 15 * 60 * 1000
MAX_TTL_MS = 24 * 60 * 60 * 1000

ERROR_CODES = frozenset(
    {
        "invalid_key",  # not a string, empty, over 64 bytes of UTF-8, or not valid Unicode
        "invalid_value",  # not a string, or not valid Unicode
        "value_too_large",  # over 4096 bytes of UTF-8
        "invalid_ttl",  # not a positive number of milliseconds
        "invalid_expires_at",  # not a number of epoch milliseconds in the future
        "invalid_options",  # options not an object, or with a name other than ttl/expires_at
        "unavailable",  # the cache did not answer in time (the invocation's deadline)
    }
)
"""The ``code`` of a ``{"type": "error"}`` answer."""

_SUCCESS: dict[str, Any] = {"type": "success"}
_SWEEP_EVERY_MS = 60_000


def error(code: str, message: str) -> dict[str, Any]:
    """A failed ``CacheWriteResult``: ``{"type": "error", "code", "message"}``."""
    return {"type": "error", "code": code, "message": message}


def key_size(key: str) -> int:
    """Bytes of ``key`` in UTF-8, or -1 when it cannot be encoded (a lone surrogate)."""
    if len(key) > MAX_KEY_BYTES:  # each character is at least one byte
        return len(key)
    try:
        return len(key.encode())
    except UnicodeEncodeError:
        return -1


@dataclass(frozen=True, slots=True)
class CacheRecord:
    """One stored value; ``expires_at`` is epoch milliseconds, ``written`` orders ties."""

    value: str
    expires_at: int
    written: int = 0
    size: int = 0  # UTF-8 bytes of the key plus the value, as the limits count them

    def public(self) -> dict[str, Any]:
        """What ``api.cache.get`` returns: Auth0's cache record, plain JSON data."""
        return {"value": self.value, "expires_at": self.expires_at}


class CacheStore(Protocol):
    """Where records live. Implementations enforce :data:`MAX_ENTRIES`/:data:`MAX_TENANT_BYTES`
    per namespace, counting ``record.size``.

    ``namespace`` is built by :class:`ActionCache` from the supervisor's tenant and trigger;
    ``now_ms`` is the caller's clock, so expiry is decided by one clock whatever the store.
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
        used = sum(r.size for r in space.values())
        # Soonest to expire first; among equals, the oldest write.
        victims = sorted(space, key=lambda k: (space[k].expires_at, space[k].written))
        while victims and (len(space) + 1 > MAX_ENTRIES or used + record.size > MAX_TENANT_BYTES):
            used -= space.pop(victims.pop(0)).size
        space[key] = record

    async def delete(self, namespace: str, key: str) -> bool:
        space = self._spaces.get(namespace)
        if space is None or space.pop(key, None) is None:
            return False
        if not space:
            del self._spaces[namespace]
        return True

    def usage(self, namespace: str) -> tuple[int, int]:
        """``(records, bytes)`` held for ``namespace``, expired ones included."""
        space = self._spaces.get(namespace, {})
        return len(space), sum(r.size for r in space.values())

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


def namespace(tenant: str, trigger: str) -> str:
    """The store's namespace for ``tenant``'s ``trigger`` (both from the supervisor).

    The trigger comes first and has no ``:``, so no two pairs share a namespace.
    """
    if type(tenant) is not str or not tenant:
        raise TypeError("tenant must be a non-empty str supplied by the supervisor")
    if trigger not in HANDLERS:
        raise TypeError(f"trigger must be one of {', '.join(HANDLERS)}, supplied by the supervisor")
    return f"{trigger}:{tenant}"


class ActionCache:
    """Validate ``api.cache`` calls and work out lifetimes; records go to a :class:`CacheStore`.

    Every call names the supervisor's ``tenant`` and ``trigger``. ``clock`` returns epoch
    seconds (``time.time``); tests pass their own.
    """

    def __init__(
        self, store: CacheStore | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store: CacheStore = store if store is not None else MemoryCacheStore()
        self._clock = clock
        self._writes = 0

    async def get(self, tenant: str, key: object, *, trigger: str) -> dict[str, Any] | None:
        """``{"value": str, "expires_at": epoch-ms}``, or None (also for a key that could never
        be stored, as there is no such record)."""
        space = namespace(tenant, trigger)
        name = _str_key(key)
        if _key_problem(name):
            return None
        record = await self.store.get(space, name, self._now_ms())
        return None if record is None else record.public()

    async def set(
        self,
        tenant: str,
        key: object,
        value: object,
        *,
        trigger: str,
        ttl: object = None,
        expires_at: object = None,
    ) -> dict[str, Any]:
        """Store a string for ``ttl`` ms (default 15 min) or until ``expires_at`` (epoch ms).

        With both, the earlier wins; the lifetime is capped at 24 h. Answers ``{"type":
        "success"}`` or :func:`error`, never raises for what the tenant sent.
        """
        space = namespace(tenant, trigger)
        problem = _key_problem(key)
        if problem:
            return error("invalid_key", problem)
        name = str(key)  # a str already: this only tells the type checker
        if type(value) is not str:
            return error(
                "invalid_value",
                f"cache value must be a string (got {type(value).__name__}); "
                "store JSON text, e.g. json.dumps(value)",
            )
        value_bytes = _value_size(value)
        if value_bytes < 0:
            return error("invalid_value", "cache value must be valid Unicode (no lone surrogates)")
        if value_bytes > MAX_VALUE_BYTES:
            return error(
                "value_too_large",
                f"cache value is {value_bytes} bytes of UTF-8, over the limit of {MAX_VALUE_BYTES}",
            )
        now = self._now_ms()
        expiry = now + DEFAULT_TTL_MS
        if ttl is not None:
            ttl_ms = _millis(ttl)
            if ttl_ms is None:
                return error("invalid_ttl", "ttl must be a positive number of milliseconds")
            expiry = now + min(ttl_ms, MAX_TTL_MS)
        if expires_at is not None:
            at = _millis(expires_at)
            if at is None or at <= now:
                return error(
                    "invalid_expires_at",
                    "expires_at must be a time in the future, in epoch milliseconds",
                )
            expiry = min(expiry, at) if ttl is not None else at
        expiry = min(expiry, now + MAX_TTL_MS)
        self._writes += 1
        size = len(name.encode()) + value_bytes
        record = CacheRecord(value=value, expires_at=expiry, written=self._writes, size=size)
        await self.store.put(space, name, record, now)
        return dict(_SUCCESS)

    async def delete(self, tenant: str, key: object, *, trigger: str) -> dict[str, Any]:
        """Remove ``key``: ``{"type": "success"}`` whether or not it was there."""
        space = namespace(tenant, trigger)
        problem = _key_problem(key)
        if problem:
            return error("invalid_key", problem)
        await self.store.delete(space, str(key))
        return dict(_SUCCESS)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _str_key(key: object) -> str:
    """``key`` for a read; a key that is not a string is refused outright (a host bug, or a
    hostile worker: the tenant's facade only sends strings)."""
    if type(key) is not str:
        raise CacheRefused(f"cache key must be a string (got {type(key).__name__})")
    return key


def _key_problem(key: object) -> str | None:
    """Why ``key`` cannot name a record (one line), or None."""
    if type(key) is not str:
        return f"cache key must be a string (got {type(key).__name__})"
    size = key_size(key)
    if size < 0:
        return "cache key must be valid Unicode (no lone surrogates)"
    if not 0 < size <= MAX_KEY_BYTES:
        return f"cache key must be 1 to {MAX_KEY_BYTES} bytes of UTF-8 (got {size})"
    return None


def _millis(value: object) -> int | None:
    """A positive whole number of milliseconds from an int or a finite float, else None."""
    if type(value) is float and math.isfinite(value):
        value = int(value)
    if type(value) is not int or value <= 0:
        return None
    return value


def _value_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (past the limit: a lower bound), -1 when not encodable."""
    if len(text) > MAX_VALUE_BYTES:  # each character is at least one byte
        return len(text)
    try:
        return len(text.encode())
    except UnicodeEncodeError:
        return -1
