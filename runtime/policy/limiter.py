"""Rate limits: moving windows in this process (the ``limits`` library), or in Redis.

Without ``redis_url`` the windows live in this process (``limits``' memory storage, called on
the loop: dictionary work, no I/O, no thread pool). With it they live in Redis, so every node
enforces one set of limits: :mod:`runtime.policy.redis_windows` checks and counts every rule
of a request in one script call (one round trip), in ``limits``' key layout.

A request is checked against every rule that applies to it, then counted against all of them
only when none refuses: a refused request counts against no limit (so a user refused for voice
can still get an SMS). Both are one atomic step: in memory no await comes between them, in
Redis they are one script, so racing nodes never let a request past a full window.

Redis that fails or does not answer within ``redis_timeout`` is the operator's policy
(``limits_on_redis_error``): ``closed`` (default) refuses the request, ``open`` lets it
through unlimited. Either way it costs at most the timeout (the first call of a process, which
also connects and loads the script, at most 2 s); after a failure Redis is not asked again for
``retry_after_failure`` seconds (1), so a dead Redis costs nothing per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Literal

from limits import RateLimitItem, RateLimitItemPerHour
from limits import storage as sync_storage
from limits import strategies as sync_strategies
from redis.exceptions import TimeoutError as RedisTimeoutError

from runtime.events import PhoneMessageRequest
from runtime.policy.config import PhoneLimits
from runtime.policy.redis_windows import RedisWindows, Window, entry_for

__all__ = ["Check", "LimitRefusal", "Limiter", "checks_for", "redis_window"]

log = logging.getLogger("runtime.policy")

OnError = Literal["closed", "open"]
_RETRY_AFTER_FAILURE = 1.0  # seconds during which a failed Redis is not asked again
_KEY_PREFIX = "phone-actions"
RELEASE_PAUSES = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
"""Seconds between two tries to take refused requests back out of Redis (about 4 minutes in
all): once Redis answers again, the number has its whole allowance back."""
MAX_OWED = 1000
"""Refused requests waiting to be taken back out of Redis, at most (a bounded list)."""
_FIRST_CALL_BUDGET = 2.0  # seconds: the connection and the script are made on first use
_MAX_CONNECTIONS = 64  # per node: a request holds one for one round trip


@dataclass(frozen=True)
class Check:
    """One rule applied to one request: its rate and the identifiers of its window."""

    rule: str
    item: RateLimitItem
    identifiers: tuple[str, ...]
    subject: str  # what is limited, for the refusal's detail ("user auth0|42")


@dataclass(frozen=True)
class LimitRefusal:
    """Why the limits refused: ``rate_limited`` (``rule``, ``retry_after``) or
    ``limits_unavailable`` (Redis failed and the policy is to fail closed)."""

    reason: str
    detail: str
    rule: str | None = None
    retry_after: int | None = None


def checks_for(
    request: PhoneMessageRequest, limits: PhoneLimits, region: str | None
) -> list[Check]:
    """The rules that apply to ``request``, in :data:`~runtime.policy.config.RULES` order."""
    items = limits.items
    tenant = request.tenant
    user_id = request.user.get("user_id")
    user = _identifier(str(user_id)) if user_id else None
    ip = request.request.ip
    found: list[Check] = []

    def add(rule: str, value: str, subject: str, item: RateLimitItem | None = None) -> None:
        chosen = item or items.get(rule)
        if chosen is not None:
            found.append(Check(rule, chosen, (tenant, rule, value), subject))

    if ip:
        add("ip", _identifier(ip), f"IP {ip}")
    add("recipient", request.recipient, f"number {request.recipient}")
    if user is not None:
        add("user_requests", user, f"user {user_id}")
        add("user_messages", user, f"user {user_id}")
        if request.channel == "voice":
            add("user_voice", user, f"user {user_id}")
    cap = limits.country_hourly_caps.get(region) if region else None
    if cap is not None and region is not None:
        add("country", region, f"country {region}", RateLimitItemPerHour(cap))
    add("tenant", "*", f"tenant {tenant}")
    return found


def _identifier(value: str) -> str:
    """``value`` as a window key part: itself when short and printable, else its digest
    (a user id or header may be long; keys stay bounded in memory and in Redis)."""
    if len(value) <= 64 and value.isprintable():
        return value
    return "h:" + hashlib.blake2b(value.encode(), digest_size=16).hexdigest()


class Limiter:
    """Moving-window rate limits on one storage (memory, or Redis at ``redis_url``)."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        timeout: float = 0.5,
        on_error: OnError = "closed",
        key_prefix: str = _KEY_PREFIX,
        retry_after_failure: float = _RETRY_AFTER_FAILURE,
        max_connections: int = _MAX_CONNECTIONS,
    ) -> None:
        self.redis_url = redis_url
        self.timeout = timeout
        self.on_error: OnError = on_error
        self._key_prefix = key_prefix
        self._max_connections = max_connections
        self._memory: sync_strategies.MovingWindowRateLimiter | None = None
        self._redis: RedisWindows | None = None
        self._down_until = 0.0
        self._warm = False  # the first call also connects and loads the script
        self.retry_after_failure = retry_after_failure
        self._owed: list[tuple[list[Window], str]] = []  # refused requests to take back
        self._releaser: asyncio.Task[None] | None = None
        self._release_wake: asyncio.Event | None = None  # made in the releaser's loop
        self._closing = False

    @property
    def shared(self) -> bool:
        """True when the windows are in Redis (shared by every node)."""
        return self.redis_url is not None

    async def check(self, checks: list[Check]) -> LimitRefusal | None:
        """Count the request against ``checks`` unless one refuses it; the refusal, or None."""
        if not checks:
            return None
        if self.redis_url is None:
            return self._check_memory(checks)
        if time.monotonic() < self._down_until:
            return self._unavailable(f"Redis failed less than {self.retry_after_failure:g} s ago")
        budget = self.timeout if self._warm else max(self.timeout, _FIRST_CALL_BUDGET)
        windows = [redis_window(c, self._key_prefix) for c in checks]
        entry = entry_for(time.time())
        try:
            async with asyncio.timeout(budget):
                found = await self._check_redis(checks, windows, entry)
            self._warm = True
            return found
        except (TimeoutError, RedisTimeoutError):
            problem = f"Redis did not answer within {budget:g} s"
        except Exception as exc:  # a refused connection, a reset, a Redis error
            log.warning("rate limits: Redis failed: %s: %s", type(exc).__name__, exc)
            problem = f"Redis failed: {type(exc).__name__}"  # its address stays in the log
        self._down_until = time.monotonic() + self.retry_after_failure
        log.warning("rate limits: %s (limits_on_redis_error=%s)", problem, self.on_error)
        if self.on_error == "closed":  # refused: Redis may have counted it before it failed
            self._take_back(windows, entry)
        return self._unavailable(problem)

    def _take_back(self, windows: list[Window], entry: str) -> None:
        """Take a refused request's entry back out of its windows, in the background: Redis
        may have run the script before its answer was lost, and a refused request is counted
        nowhere. Tried at once, then again while Redis does not answer (:data:`RELEASE_PAUSES`),
        and once more at close; at most :data:`MAX_OWED` wait."""
        if self._redis is None:
            return
        if len(self._owed) >= MAX_OWED:
            log.warning(
                "rate limits: %d refused requests wait to be taken back out of Redis; "
                "this one stays counted until its windows move on",
                len(self._owed),
            )
            return
        self._owed.append((windows, entry))
        if self._releaser is None or self._releaser.done():
            self._releaser = asyncio.get_running_loop().create_task(self._release_owed())

    async def _release_owed(self) -> None:
        for pause in (0.0, *RELEASE_PAUSES):
            if pause and not self._closing:  # closing wakes it for one last pass
                wake = self._release_wake = asyncio.Event()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await wake.wait()
            if await self._release_pass() or self._closing:
                break
        if self._owed:
            log.warning(
                "rate limits: %d refused requests could not be taken back out of Redis; they "
                "stay counted until their windows move on",
                len(self._owed),
            )

    async def _release_pass(self) -> bool:
        """Take back what is owed, oldest first: True once nothing is."""
        redis = self._redis
        while self._owed and redis is not None:
            windows, entry = self._owed[0]
            try:
                async with asyncio.timeout(max(self.timeout, _FIRST_CALL_BUDGET)):
                    await redis.release(windows, entry)
            except Exception:  # Redis still does not answer: the next pass
                return False
            self._owed.pop(0)
        return not self._owed

    async def aclose(self) -> None:
        """Release Redis connections (the memory windows just go), once the refused requests
        being taken back are."""
        self._closing = True
        if self._release_wake is not None:
            self._release_wake.set()
        releaser = self._releaser
        if releaser is not None and not releaser.done():
            await releaser
        windows, self._redis = self._redis, None
        if windows is not None:
            try:
                async with asyncio.timeout(self.timeout):
                    await windows.aclose()
            except Exception as exc:
                log.warning("closing the rate limits' Redis connections: %s", exc)

    # -- memory ----------------------------------------------------------------------------

    def _check_memory(self, checks: list[Check]) -> LimitRefusal | None:
        limiter = self._memory
        if limiter is None:
            limiter = self._memory = sync_strategies.MovingWindowRateLimiter(
                sync_storage.MemoryStorage()
            )
        for check in checks:  # no await in here: check and count are atomic on the loop
            if not limiter.test(check.item, *check.identifiers):
                reset = limiter.get_window_stats(check.item, *check.identifiers).reset_time
                return _limited(check, reset)
        for check in checks:
            limiter.hit(check.item, *check.identifiers)
        return None

    # -- Redis -----------------------------------------------------------------------------

    async def _check_redis(
        self, checks: list[Check], windows: list[Window], entry: str
    ) -> LimitRefusal | None:
        redis = self._redis
        if redis is None:
            assert self.redis_url is not None
            redis = self._redis = RedisWindows(
                self.redis_url,
                timeout=self.timeout,
                connect_timeout=max(self.timeout, _FIRST_CALL_BUDGET),
                max_connections=self._max_connections,
            )
        found = await redis.acquire(windows, entry)
        if found is None:
            return None
        index, oldest = found
        check = checks[index]
        return _limited(check, oldest + check.item.get_expiry())

    def _unavailable(self, problem: str) -> LimitRefusal | None:
        if self.on_error == "open":
            return None
        return LimitRefusal(
            "limits_unavailable",
            f"the rate limits could not be checked ({problem}); nothing was sent "
            "(limits_on_redis_error=closed)",
            retry_after=max(1, math.ceil(self.retry_after_failure)),
        )


def redis_window(check: Check, prefix: str) -> Window:
    """``check``'s window in Redis, under ``limits``' own key for it."""
    item = check.item
    return Window(f"{prefix}:{item.key_for(*check.identifiers)}", item.amount, item.get_expiry())


def _limited(check: Check, reset_time: float) -> LimitRefusal:
    retry_after = max(1, math.ceil(reset_time - time.time()))
    return LimitRefusal(
        "rate_limited",
        f"{check.rule}: {check.subject} reached {check.item.amount} per "
        f"{_window(check.item)}; try again in {retry_after} s",
        rule=check.rule,
        retry_after=retry_after,
    )


def _window(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return f"{item.multiples} {unit}s" if item.multiples != 1 else unit
