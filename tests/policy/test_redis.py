"""Rate limits in Redis: two pipelines (two nodes) on one Redis enforce one set of limits, and
a Redis that dies or goes silent mid-run is the documented policy (closed: refused; open:
sent), costing at most ``redis_timeout``. Faults are real: a redis-server of the test's own,
killed; a TCP proxy in front of the machine's Redis, frozen."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from runtime import PhoneMessageRequest
from runtime.policy.config import PhoneLimits
from runtime.policy.limiter import Limiter, checks_for, redis_window
from runtime.policy.redis_windows import RedisWindows, entry_for
from tests.conftest import PipelineFactory
from tests.fake_providers import ProvidersPlugin, ScriptedProvider
from tests.policy.conftest import started_redis, tenant_of_this_test
from tests.store.faults import FrozenProxy

NUMBER = "+14155552671"
TIMEOUT = 0.2


def request(tenant: str, user: str = "auth0|alice", **fields: Any) -> PhoneMessageRequest:
    return PhoneMessageRequest.create(
        tenant=tenant, recipient=NUMBER, code="123456", user={"user_id": user}, **fields
    )


def tenants(tenant: str) -> dict[str, dict[str, Any]]:
    # user_requests off: the hour's limit is what is shared here, not the 5-minute one
    return {tenant: {"provider": "primary", "phone_limits": {"user_requests": None}}}


async def test_two_nodes_on_one_redis_enforce_one_limit(
    make_pipeline: PipelineFactory, redis_url: str
) -> None:
    tenant = tenant_of_this_test()
    providers = ScriptedProvider("primary"), ScriptedProvider("primary")
    node_a, node_b = (
        make_pipeline(tenants(tenant), plugins=(ProvidersPlugin(p),), redis_url=redis_url)
        for p in providers
    )
    reports = [await (node_a, node_b)[n % 2].deliver(request(tenant)) for n in range(10)]
    assert [r.status for r in reports] == ["delivered"] * 10
    for node in (node_a, node_b):
        eleventh = await node.deliver(request(tenant))
        assert (eleventh.reason, eleventh.limit) == ("rate_limited", "user_messages")
        assert 3590 <= (eleventh.retry_after or 0) <= 3600
    assert [len(p.sent) for p in providers] == [5, 5]
    assert (await node_b.deliver(request(tenant, user="auth0|bob"))).status == "delivered"


async def test_redis_killed_mid_run_fails_closed_then_recovers(
    own_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, process = own_redis
    limiter = Limiter(url, timeout=TIMEOUT, retry_after_failure=0)
    checks = checks_for(request(tenant_of_this_test()), PhoneLimits(), "US")
    try:
        assert await limiter.check(checks) is None
        process.send_signal(signal.SIGKILL)
        process.wait()
        started = time.perf_counter()
        refused = await limiter.check(checks)
        elapsed = time.perf_counter() - started
        assert refused is not None
        assert refused.reason == "limits_unavailable"
        assert "closed" in refused.detail
        # the tenant reads what failed, never where the platform's Redis is (the log has it)
        assert "Redis failed: ConnectionError" in refused.detail
        assert url.removeprefix("unix://") not in refused.detail
        assert elapsed < TIMEOUT + 1.0  # a refused socket fails at once; 1 s: a loaded CI
        opened = Limiter(url, timeout=TIMEOUT, on_error="open")
        assert await opened.check(checks) is None  # fail open: sent without limits
        await opened.aclose()
    finally:
        await limiter.aclose()


async def test_a_silent_redis_costs_at_most_the_timeout_and_then_nothing(
    redis_url: str,
) -> None:
    if not redis_url.startswith("redis://127.0.0.1:6379"):
        pytest.skip("the proxy fronts the machine's Redis at 127.0.0.1:6379")
    proxy = FrozenProxy(("127.0.0.1", 6379))
    url = redis_url.replace("127.0.0.1:6379", f"127.0.0.1:{proxy.port}")
    limiter = Limiter(url, timeout=TIMEOUT)  # fail closed, Redis skipped for 1 s after
    checks = checks_for(request(tenant_of_this_test()), PhoneLimits(), "US")
    try:
        assert await limiter.check(checks) is None
        proxy.freeze()
        started = time.process_time(), time.perf_counter()
        refused = await limiter.check(checks)
        waited = time.perf_counter() - started[1]
        assert refused is not None
        assert refused.reason == "limits_unavailable"
        assert "did not answer within 0.2 s" in refused.detail
        assert TIMEOUT * 0.9 <= waited < TIMEOUT + 1.0  # bounded by the timeout; 1 s: CI
        again = time.perf_counter()
        assert (await limiter.check(checks)) is not None
        assert time.perf_counter() - again < TIMEOUT  # not asked again within a second
    finally:
        await limiter.aclose()
        proxy.close()


async def test_a_request_refused_because_redis_did_not_answer_is_counted_nowhere(
    redis_url: str,
) -> None:
    """Redis ran the script but its answer was lost (a link that passes commands and holds
    answers): the request is refused (closed), and taken back out of its windows once Redis
    answers again, so the number keeps its whole allowance."""
    if not redis_url.startswith("redis://127.0.0.1:6379"):
        pytest.skip("the proxy fronts the machine's Redis at 127.0.0.1:6379")
    proxy = FrozenProxy(("127.0.0.1", 6379))
    limiter = Limiter(
        redis_url.replace("127.0.0.1:6379", f"127.0.0.1:{proxy.port}"), timeout=TIMEOUT
    )
    checks = checks_for(request(tenant_of_this_test()), PhoneLimits(), "US")
    direct = redis.Redis.from_url(redis_url, socket_timeout=5)
    keys = [redis_window(check, "phone-actions").key for check in checks]
    try:
        assert await limiter.check(checks) is None
        assert [direct.llen(key) for key in keys] == [1] * len(keys)
        proxy.hold_answers()
        refused = await limiter.check(checks)
        assert refused is not None
        assert refused.reason == "limits_unavailable"
        assert [direct.llen(key) for key in keys] == [2] * len(keys)  # Redis counted it
        proxy.heal()  # Redis answers again
    finally:
        await limiter.aclose()  # one more try to take the refused request back
        proxy.close()
    assert [direct.llen(key) for key in keys] == [1] * len(keys)  # the first request only
    direct.close()


async def test_a_script_call_that_runs_twice_counts_its_request_once(redis_url: str) -> None:
    """redis-py retries a command once on a fresh connection: the request's entry is unique,
    and the script counts it once however often it runs."""
    windows = [
        redis_window(c, "phone-actions")
        for c in checks_for(request(tenant_of_this_test()), PhoneLimits(), "US")
    ]
    redis_windows = RedisWindows(redis_url, timeout=1, connect_timeout=1, max_connections=2)
    direct = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        entry = entry_for(time.time())
        assert await redis_windows.acquire(windows, entry) is None
        assert await redis_windows.acquire(windows, entry) is None  # the same call again
        assert [direct.llen(w.key) for w in windows] == [1] * len(windows)
        await redis_windows.release(windows, entry)
        assert [direct.llen(w.key) for w in windows] == [0] * len(windows)
    finally:
        await redis_windows.aclose()
        direct.close()


def test_the_machine_redis_is_reachable(redis_url: str) -> None:
    """A skipped Redis test must mean 'not configured', never a wrong URL."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    assert client.ping()
    client.close()


async def test_a_refusal_for_absent_redis_frees_its_idempotency_key(
    make_pipeline: PipelineFactory, tmp_path: Path
) -> None:
    """limits_unavailable sent nothing, for a passing reason: the caller's retry with the same
    key, once Redis is there, delivers instead of replaying the 503."""
    tenant = tenant_of_this_test()
    socket = tmp_path / "later.sock"
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(
        tenants(tenant), plugins=(ProvidersPlugin(primary),), redis_url=f"unix://{socket}"
    )
    pipeline.policy.limiter.retry_after_failure = 0  # asked again at once, not after 1 s
    keyed = request(tenant, idempotency_key="k-1")
    refused = await pipeline.deliver(keyed)
    assert (refused.status, refused.reason) == ("rejected", "limits_unavailable")
    with started_redis(socket):
        delivered = await pipeline.deliver(keyed)
        assert (delivered.status, delivered.replayed) == ("delivered", False)
        again = await pipeline.deliver(keyed)
        assert (again.replayed, again.id) == (True, delivered.id)
    assert len(primary.sent) == 1
