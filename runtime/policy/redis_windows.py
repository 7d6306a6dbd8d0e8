"""Moving windows in Redis, every rule of a request in one script call (one round trip).

The script tests every window the request falls in and, only when none is full, adds the
request to all of them: one atomic step in Redis, so two nodes never both take the last place
of a window. Keys keep the ``limits`` library's moving-window layout (so its tools and a node
of the previous version read the same windows): ``{prefix}:LIMITER/{tenant}/{rule}/{value}/
{amount}/{multiples}/{unit}``, a list of request times (seconds since the epoch, the caller's
clock), newest first, trimmed to ``amount`` entries and expiring one window after its last
request. A window is full when its ``amount``-th newest entry is younger than the window.

The client is ``redis.asyncio`` (with ``hiredis``' parser and packer) on a connection pool of
at most ``max_connections``: a semaphore of as many places is taken before a connection is
(cheaper than redis-py's blocking pool, which costs ~20 µs a call; the caller's deadline
bounds the wait). The script is loaded once per Redis (EVALSHA, and SCRIPT LOAD only when
Redis answers that it does not know it). Every key
of a call must be on one Redis: a single server (``redis://``, ``rediss://``, ``unix://``),
not a cluster.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

__all__ = ["ACQUIRE", "RedisWindows", "Window", "entry_for"]

ACQUIRE = """
-- KEYS[i]: a moving window (a list of request times, newest first)
-- ARGV[1]: this request's entry: now, made unique by white space after it (entry_for)
-- ARGV[2i], ARGV[2i+1]: window i's amount and length in seconds
if redis.call('lpos', KEYS[1], ARGV[1], 'MAXLEN', 64) then
    return 0  -- counted already: this call ran before (a retry on a fresh connection, within
              -- a second: its entry is among the newest 64, and the search stays bounded)
end
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
    local oldest = redis.call('lindex', KEYS[i], tonumber(ARGV[2 * i]) - 1)
    if oldest and tonumber(oldest) > now - tonumber(ARGV[2 * i + 1]) then
        return {i, oldest}
    end
end
for i = 1, #KEYS do
    redis.call('lpush', KEYS[i], ARGV[1])
    redis.call('ltrim', KEYS[i], 0, tonumber(ARGV[2 * i]) - 1)
    redis.call('expire', KEYS[i], ARGV[2 * i + 1])
end
return 0
"""
"""Refuses with ``{i, time}`` (window i, 1-based, is full; ``time`` is the entry whose ageing
out frees a place), or counts the request everywhere and answers 0. A request's entry is
unique, so a call that runs twice counts once, and a count can be taken back
(:meth:`RedisWindows.release`)."""


def entry_for(now: float) -> str:
    """A request's entry: ``now`` as ``repr`` spells it, then 24 random spaces and tabs. Lua's
    ``tonumber`` and Python's ``float`` skip white space after a number, so the entry reads
    as exactly ``now`` (here, in ``limits`` and in an older node's script), yet it is unique:
    the request can be found again (a script that runs twice) and taken back."""
    tag = secrets.randbits(24)  # unique among the requests of one microsecond
    return repr(now) + "".join(" \t"[(tag >> bit) & 1] for bit in range(24))


@dataclass(frozen=True)
class Window:
    """One window a request falls in: its key, its amount and its length (seconds)."""

    key: str
    amount: int
    seconds: int


class RedisWindows:
    """The windows of one Redis, one script call per request."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        connect_timeout: float,
        max_connections: int,
    ) -> None:
        # One immediate retry on a fresh connection: a pooled connection that Redis closed
        # (a restart) costs one reconnect, not a refusal. The caller's deadline bounds both.
        self._pool = ConnectionPool.from_url(
            url,
            max_connections=max_connections,
            socket_timeout=timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 1),
        )
        self._client = Redis(connection_pool=self._pool)
        self._slots = asyncio.Semaphore(max_connections)  # the pool is never asked for more
        self._acquire = self._client.register_script(ACQUIRE)

    async def acquire(self, windows: Sequence[Window], entry: str) -> tuple[int, float] | None:
        """Count a request (its :func:`entry_for`) in every window unless one is full: None,
        or the full window's index in ``windows`` and the time of the entry that frees its
        next place."""
        args: list[str | int | float] = [entry]
        for window in windows:
            args += (window.amount, window.seconds)
        async with self._slots:
            found = await self._acquire(keys=[w.key for w in windows], args=args)
        if not found:
            return None
        index, oldest = found
        return int(index) - 1, float(oldest)  # its time (float() skips the tag)

    async def release(self, windows: Sequence[Window], entry: str) -> None:
        """Take ``entry`` back out of ``windows``: a request refused after all (Redis did not
        answer in time, and the policy is to refuse) is counted nowhere."""
        # plain commands in one transaction: nothing to load first (a script's NOSCRIPT
        # answer would have to come back before it ran)
        async with self._slots, self._client.pipeline(transaction=True) as transaction:
            for window in windows:
                transaction.lrem(window.key, 0, entry)
            await transaction.execute()

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._pool.aclose()
