"""The limiter's windows, in memory and in Redis: the same answers on a controllable clock; in
Redis one script call per request whatever the number of rules, the whole request counted or
none of it even when nodes race, and the ``limits`` library's key layout (a node of the
previous version, or limits' own tools, read and fill the same windows)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import time_machine
from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from runtime import PhoneMessageRequest
from runtime.policy.config import PhoneLimits
from runtime.policy.limiter import Limiter, LimitRefusal, checks_for
from tests.policy.conftest import tenant_of_this_test

NUMBER = "+14155552671"
HOUR = 3600
EVERY_RULE = PhoneLimits(
    ip="1000/hour", recipient="1000/hour", tenant="1000/hour", country_hourly_caps={"US": 1000}
)


def request(tenant: str, user: str, **fields: Any) -> PhoneMessageRequest:
    return PhoneMessageRequest.create(
        tenant=tenant, recipient=NUMBER, code="123456", user={"user_id": user}, **fields
    )


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(1_800_000_000.0, tick=False) as traveller:
        yield traveller


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> str | None:
    """The limiter's ``redis_url``: None (memory) or the machine's Redis."""
    return None if request.param == "memory" else str(request.getfixturevalue("redis_url"))


async def check(limiter: Limiter, tenant: str, user: str, **fields: Any) -> LimitRefusal | None:
    limits = PhoneLimits(user_requests=None)
    return await limiter.check(checks_for(request(tenant, user, **fields), limits, "US"))


async def test_memory_and_redis_answer_alike(
    storage: str | None, clock: time_machine.Traveller
) -> None:
    """10 per hour: the 11th is refused until the first ages out, then one more per message
    that ages out; a refused voice call counts against no rule."""
    tenant = tenant_of_this_test()
    limiter = Limiter(storage, timeout=5.0)  # 5 s: an answer that should come, on a loaded CI
    try:
        assert await check(limiter, tenant, "alice", channel="voice") is None
        for _ in range(8):
            clock.shift(60)
            assert await check(limiter, tenant, "alice") is None
        clock.shift(60)
        voice = await check(limiter, tenant, "alice", channel="voice")
        assert voice is not None
        assert (voice.reason, voice.rule, voice.retry_after) == (
            "rate_limited",
            "user_voice",
            HOUR - 9 * 60,
        )
        assert await check(limiter, tenant, "alice") is None  # the refused call counted nowhere
        clock.shift(60)
        refused = await check(limiter, tenant, "alice")
        assert refused is not None
        assert (refused.rule, refused.retry_after) == ("user_messages", HOUR - 10 * 60)
        assert await check(limiter, tenant, "bob") is None  # the window is alice's
        # the first message is more than an hour old: out of the window (0.5 s past the
        # instant itself, where limits' memory storage lets one through without counting it)
        clock.shift(HOUR - 10 * 60 + 0.5)
        assert await check(limiter, tenant, "alice") is None
        again = await check(limiter, tenant, "alice")
        assert again is not None
        assert again.retry_after == 60  # the second ages out a minute later
    finally:
        await limiter.aclose()


async def test_one_script_call_per_request_whatever_the_rules(
    own_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, _ = own_redis
    limiter = Limiter(url, timeout=5.0)
    tenant = tenant_of_this_test()
    first = request(tenant, "alice", channel="voice", request={"ip": "203.0.113.7"})
    checks = checks_for(first, EVERY_RULE, "US")
    assert len(checks) == 7
    server = redis.Redis(unix_socket_path=url.removeprefix("unix://"))
    try:
        assert await limiter.check(checks) is None  # loads the script
        server.config_resetstat()
        for number in range(20):
            voice = request(
                tenant, f"user-{number}", channel="voice", request={"ip": "203.0.113.7"}
            )
            assert await limiter.check(checks_for(voice, EVERY_RULE, "US")) is None
        stats = server.info("commandstats")
        sent = {name: row["calls"] for name, row in stats.items() if name != "cmdstat_info"}
        assert sent.pop("cmdstat_evalsha") == 20  # one call a request, for 7 rules
        assert sent.pop("cmdstat_config|resetstat") == 1
        # the rest ran inside the script: each window read once, counted once, and the
        # first window asked once whether this request was counted already
        assert sent.pop("cmdstat_lpos") == 20
        assert sent == {
            f"cmdstat_{name}": 20 * 7 for name in ("lindex", "lpush", "ltrim", "expire")
        }

        server.script_flush()  # as after a restart of Redis: the script is loaded again
        again = await limiter.check(checks)  # alice's second voice call: her window answers
        assert again is not None
        assert (again.reason, again.rule) == ("rate_limited", "user_voice")
    finally:
        await limiter.aclose()
        server.close()


async def test_racing_nodes_count_a_request_everywhere_or_nowhere(redis_url: str) -> None:
    """Two nodes, 40 requests at once for one number (5 per hour), each of its own user: 5 go,
    and a refused request left no trace in its user's window."""
    tenant = tenant_of_this_test()
    limits = PhoneLimits(recipient="5/hour", user_requests=None)
    nodes = Limiter(redis_url, timeout=5.0), Limiter(redis_url, timeout=5.0)
    users = [f"racer-{number}" for number in range(40)]
    try:
        found = await asyncio.gather(
            *(
                nodes[number % 2].check(checks_for(request(tenant, user), limits, "US"))
                for number, user in enumerate(users)
            )
        )
        allowed = [user for user, refusal in zip(users, found, strict=True) if refusal is None]
        assert len(allowed) == 5
        assert {r.rule for r in found if r is not None} == {"recipient"}
        server = redis.Redis.from_url(redis_url)
        try:
            item = parse(limits.user_messages or "")
            for user in users:
                key = f"phone-actions:{item.key_for(tenant, 'user_messages', user)}"
                assert server.llen(key) == (1 if user in allowed else 0), user
        finally:
            server.close()
    finally:
        for node in nodes:
            await node.aclose()


async def test_limits_own_strategy_reads_and_fills_the_same_windows(redis_url: str) -> None:
    tenant = tenant_of_this_test()
    limiter = Limiter(redis_url, timeout=5.0)
    storage = RedisStorage(
        "async+" + redis_url, implementation="redispy", key_prefix="phone-actions"
    )
    theirs = MovingWindowRateLimiter(storage)
    limits = PhoneLimits()
    try:
        for _ in range(3):
            assert await check(limiter, tenant, "alice") is None
        messages = parse(limits.user_messages or "")
        stats = await theirs.get_window_stats(messages, tenant, "user_messages", "alice")
        assert stats.remaining == messages.amount - 3

        voice = parse(limits.user_voice or "")
        assert await theirs.hit(voice, tenant, "user_voice", "bob")  # a node of before
        refused = await check(limiter, tenant, "bob", channel="voice")
        assert refused is not None
        assert refused.rule == "user_voice"
        assert HOUR - 60 <= (refused.retry_after or 0) <= HOUR  # 60 s: a loaded CI
    finally:
        await limiter.aclose()
        bridge: Any = storage.bridge
        await bridge.get_connection().aclose()
