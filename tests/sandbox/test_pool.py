"""The worker pool with real processes: reuse, per-tenant isolation, recycling, eviction, RPC.

Nothing of ours is mocked. The only double is ``Services`` (the supervisor-side API that the
egress/cache code implements), so that a test can see and steer every ``api`` call; blocking
calls in it are how tests hold an invocation open without sleeping.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from runtime.sandbox.guest.oslimits import WorkerLimits
from runtime.sandbox.host.context import InvocationContext
from runtime.sandbox.host.pool import SandboxPool
from runtime.sandbox.host.refusals import ApiRefused
from runtime.sandbox.host.zygote_client import ZygoteClient
from runtime.sandbox.shared.contract import InvocationResult, SandboxLimits
from runtime.sandbox.shared.exits import EXIT_TENANT
from runtime.sandbox.shared.frames import ConnectionClosed, encode_frame

HERE = "tests.sandbox.test_pool"
EVENT = {"message_options": {"recipient": "+14155550100", "text": "Your code is 123456"}}
TRIVIAL = """
def on_execute_send_phone_message(event, api):
    return {"to": event.message_options.recipient}
"""
FAILING = """
def on_execute_send_phone_message(event, api):
    return 1 / 0
"""
BLOCKING = """
def on_execute_send_phone_message(event, api):
    return api.cache.get("block")
"""

_remembered: Any = None


def remember(value: Any) -> None:
    """Probe: set module-level state in the worker it runs in."""
    global _remembered
    _remembered = value


def recall() -> Any:
    """Probe: read it back."""
    return _remembered


@dataclass
class Services:
    """A ``Services`` double: records calls; ``cache.get("block")`` waits for ``release``."""

    calls: list[tuple[str, str, dict[str, Any], float]] = field(default_factory=list)
    store: dict[tuple[str, str], Any] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    blocked: int = 0
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, context: InvocationContext, op: str, params: dict[str, Any]) -> Any:
        tenant = context.tenant
        self.calls.append((tenant, op, params, context.deadline))
        if op == "http.request":
            if "refuse" in params["url"]:
                raise ApiRefused("destination not allowed")
            return {"status": 202, "headers": {}, "text": "queued", "json": {"id": "m1"}}
        key = params["key"]
        if key == "block":
            self.blocked += 1
            self.entered.set()
            await self.release.wait()
            return tenant
        if op == "cache.set":
            self.store[tenant, key] = params["value"]
            return None
        return self.store.get((tenant, key))

    async def until_blocked(self, count: int) -> None:
        while self.blocked < count:
            self.entered.clear()
            await self.entered.wait()


PoolFactory = Callable[..., Awaitable[SandboxPool]]


@pytest.fixture
async def make_pool() -> AsyncIterator[PoolFactory]:
    pools: list[SandboxPool] = []

    async def factory(services: Services | None = None, **kwargs: Any) -> SandboxPool:
        kwargs.setdefault("spare_workers", 0)
        kwargs.setdefault("probe_modules", (HERE,))
        pool = SandboxPool(services or Services(), **kwargs)
        pools.append(pool)
        await pool.start()
        return pool

    yield factory
    for pool in pools:
        await pool.aclose()


async def run(
    pool: SandboxPool, tenant: str, source: str | bytes = TRIVIAL, **kwargs: Any
) -> InvocationResult:
    return await pool.invoke(
        tenant=tenant,
        name="action",
        source=source,
        trigger="send-phone-message",
        event=EVENT,
        **kwargs,
    )


async def test_invoke_ok_and_warm_worker_is_reused(make_pool: PoolFactory) -> None:
    pool = await make_pool()
    first = await run(pool, "acme")
    assert first.outcome == "ok", first
    assert first.result == {"to": "+14155550100"}
    assert first.duration_ms > 0
    pids = pool.idle_pids("acme")
    for _ in range(5):
        assert (await run(pool, "acme")).outcome == "ok"
    assert pool.idle_pids("acme") == pids
    assert pool.stats()["spawned"] == 1


async def test_bytes_source_and_compile_error(make_pool: PoolFactory) -> None:
    pool = await make_pool()
    assert (await run(pool, "acme", TRIVIAL.encode())).result == {"to": "+14155550100"}
    broken = await run(pool, "acme", "def on_execute_send_phone_message(event, api):\n  return (\n")
    assert broken.outcome == "compile_error"
    assert broken.compile_errors


async def test_tenants_never_share_a_worker_or_its_state(make_pool: PoolFactory) -> None:
    pool = await make_pool()
    await pool.probe("tenant-a", f"{HERE}:remember", "secret of a")
    assert await pool.probe("tenant-b", f"{HERE}:recall") is None
    assert await pool.probe("tenant-a", f"{HERE}:recall") == "secret of a"
    pids: dict[str, set[int]] = {"tenant-a": set(), "tenant-b": set()}
    for _ in range(3):
        results = await asyncio.gather(*(run(pool, t) for t in ["tenant-a", "tenant-b"] * 2))
        assert {r.outcome for r in results} == {"ok"}
        for tenant in pids:
            pids[tenant].update(pool.idle_pids(tenant))
    assert pids["tenant-a"]
    assert pids["tenant-b"]
    assert not pids["tenant-a"] & pids["tenant-b"]


async def test_recycled_after_n_invocations(make_pool: PoolFactory) -> None:
    pool = await make_pool(limits=SandboxLimits(max_invocations_per_worker=3))
    seen = []
    for _ in range(7):
        assert (await run(pool, "acme")).outcome == "ok"
        seen.append(pool.idle_pids("acme")[0] if pool.idle_pids("acme") else None)
    assert seen[:2] == [seen[0]] * 2
    assert seen[2] is None  # third invocation: recycled
    assert len({p for p in seen if p is not None}) == 3
    assert pool.stats()["recycled"] == 2


async def test_recycled_after_any_error(make_pool: PoolFactory) -> None:
    pool = await make_pool()
    assert (await run(pool, "acme")).outcome == "ok"
    before = pool.idle_pids("acme")
    failed = await run(pool, "acme", FAILING)
    assert failed.outcome == "runtime_error"
    assert failed.error is not None
    assert "ZeroDivisionError" in failed.error
    assert pool.idle_pids("acme") == []
    assert (await run(pool, "acme")).outcome == "ok"
    assert pool.idle_pids("acme") != before
    assert pool.stats()["killed"] == 1


async def test_lru_eviction_with_more_tenants_than_workers(make_pool: PoolFactory) -> None:
    pool = await make_pool(max_workers=3)
    for i in range(6):
        assert (await run(pool, f"t{i}")).outcome == "ok"
        assert pool.stats()["live"] <= 3
    assert pool.stats()["evicted"] == 3
    assert [t for t in (f"t{i}" for i in range(6)) if pool.idle_pids(t)] == ["t3", "t4", "t5"]
    warm = pool.idle_pids("t5")
    assert (await run(pool, "t5")).outcome == "ok"
    assert pool.idle_pids("t5") == warm
    # a rotation through many more tenants than workers keeps working
    results = await asyncio.gather(*(run(pool, f"r{i % 40}") for i in range(120)))
    assert {r.outcome for r in results} == {"ok"}
    assert pool.stats()["live"] <= 3


async def test_rpc_round_trip(make_pool: PoolFactory) -> None:
    services = Services()
    pool = await make_pool(services)
    source = """
def on_execute_send_phone_message(event, api):
    api.cache.set("last", event.message_options.recipient)
    sent = api.http.post("https://sms.example.com/send?key=s3cret", json={"text": "hi"})
    try:
        api.http.get("https://refuse.example.com/")
        refused = None
    except ApiError as exc:
        refused = str(exc)
    return {"cached": api.cache.get("last"), "status": sent.status, "id": sent.json["id"],
            "refused": refused}
"""
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await run(pool, "acme", source)
    finished = loop.time()
    assert result.outcome == "ok", result
    assert result.result == {
        "cached": "+14155550100",
        "status": 202,
        "id": "m1",
        "refused": "destination not allowed",
    }
    assert [(t, op) for t, op, _, _ in services.calls] == [
        ("acme", "cache.set"),
        ("acme", "http.request"),
        ("acme", "http.request"),
        ("acme", "cache.get"),
    ]
    deadline = services.calls[0][3]
    budget = SandboxLimits().timeout
    assert started + budget <= deadline <= finished + budget  # the invocation's own deadline
    assert result.handed_off is True  # a 2xx answer, as the supervisor saw it
    assert [(c.method, c.url, c.status) for c in result.http] == [
        ("POST", "https://sms.example.com/send?…", 202),
        ("GET", "https://refuse.example.com/", None),
    ]
    assert services.store["acme", "last"] == "+14155550100"


async def test_stdlib_facades_work_in_a_worker(make_pool: PoolFactory) -> None:
    """Workers run unprivileged and cannot import files later: everything must be preloaded."""
    pool = await make_pool()
    source = """
import json, re, math, datetime, hashlib, hmac, base64, time, random
from urllib import parse
def on_execute_send_phone_message(event, api):
    d = datetime.datetime.strptime("2024-01-02 03:04", "%Y-%m-%d %H:%M")
    h = hashlib.sha256(b"abc").hexdigest()[:8] + hmac.new(b"k", b"m", "sha256").hexdigest()[:8]
    q = parse.urlencode({"a": "b c"}) + parse.quote("é") + parse.urlsplit("https://x.org/p").path
    r = re.sub(r"(\\d+)", "#", "a1b22", flags=re.I)
    j = json.loads(json.dumps({"a": [1.5, "é"]}, sort_keys=True))
    n = math.floor(math.sqrt(16)) + random.randint(1, 1) + int(time.time() > 0)
    return [d.isoformat(), h, base64.b64encode(b"xyz").decode(), q, r, j, n]
"""
    result = await run(pool, "acme", source)
    assert result.outcome == "ok", result
    assert result.result == [
        "2024-01-02T03:04:00",
        "ba7816bfb60090e3",
        "eHl6",
        "a=b+c%C3%A9/p",
        "a#b#",
        {"a": [1.5, "é"]},
        6,
    ]


async def test_backpressure_queues_per_tenant(make_pool: PoolFactory) -> None:
    services = Services()
    pool = await make_pool(services, max_workers_per_tenant=1, max_queued_per_tenant=2)
    calls = [asyncio.create_task(run(pool, "acme", BLOCKING)) for _ in range(4)]
    await services.until_blocked(1)
    assert pool.stats()["queued"] == 2
    rejected = await calls[3]  # queue bound reached: refused at once, not queued
    assert rejected.outcome == "timeout"
    assert rejected.error is not None
    assert "too many queued" in rejected.error
    other = await run(pool, "other")  # other tenants are not held up
    assert other.outcome == "ok"
    services.release.set()
    results = await asyncio.gather(*calls[:3])
    assert [r.result for r in results] == ["acme"] * 3
    assert services.blocked == 3
    assert pool.stats()["spawned"] == 2  # one worker for acme, one for other


async def test_waits_for_a_slot_when_all_workers_are_busy(make_pool: PoolFactory) -> None:
    services = Services()
    pool = await make_pool(services, max_workers=1)
    held = asyncio.create_task(run(pool, "acme", BLOCKING))
    await services.until_blocked(1)
    waiting = asyncio.create_task(run(pool, "other"))
    await asyncio.sleep(0)  # one loop turn: it runs up to the slot queue (ordering, not timing)
    assert pool.stats()["waiting_for_worker"] == 1
    services.release.set()
    assert (await held).outcome == "ok"
    assert (await waiting).outcome == "ok"
    assert pool.stats()["live"] == 1
    assert pool.stats()["evicted"] == 1  # acme's worker made room for the waiting tenant


async def test_a_waiting_invocation_gives_up_at_its_deadline(make_pool: PoolFactory) -> None:
    services = Services()
    pool = await make_pool(services, max_workers=1)
    held = asyncio.create_task(run(pool, "acme", BLOCKING))
    await services.until_blocked(1)
    starved = await run(pool, "other", limits=SandboxLimits(timeout=0.2))
    assert starved.outcome == "timeout"
    assert starved.error is not None
    assert "sandbox busy" in starved.error
    services.release.set()
    assert (await held).outcome == "ok"
    assert (await run(pool, "other")).outcome == "ok"


async def test_stats_and_seccomp_report(make_pool: PoolFactory) -> None:
    pool = await make_pool(spare_workers=2)
    assert (await run(pool, "acme")).outcome == "ok"
    stats = pool.stats()
    assert stats["idle_per_tenant"] == {"acme": 1}
    assert set(stats["seccomp"]) == {"active", "detail"}
    assert stats["outcomes"] == {"ok": 1}


async def test_a_worker_refuses_a_second_tenant_and_exits() -> None:
    """The pool never does this; a real worker, driven directly, must die rather than comply."""
    client = ZygoteClient(lambda worker: None)
    await client.start(probes=(), require_seccomp=False)
    try:
        worker = await client.spawn(WorkerLimits(memory_bytes=256 << 20, cpu_seconds=5))
        message = {"type": "invoke", "name": "a", "source": TRIVIAL, "event": EVENT}
        message |= {"trigger": "send-phone-message", "limits": SandboxLimits().model_dump()}
        frame = encode_frame({**message, "id": 1, "tenant": "acme"}, max_size=1 << 20)
        worker.conn.send(frame)
        first = await worker.conn.recv()
        assert first["result"]["outcome"] == "ok"
        worker.conn.send(encode_frame({**message, "id": 2, "tenant": "other"}, max_size=1 << 20))
        with pytest.raises(ConnectionClosed):
            await worker.conn.recv()
        status = await worker.exited
        assert status is not None
        assert os.waitstatus_to_exitcode(status) == EXIT_TENANT
    finally:
        await client.aclose()


async def test_the_pool_recovers_when_the_zygote_dies(make_pool: PoolFactory) -> None:
    pool = await make_pool()
    assert (await run(pool, "acme")).outcome == "ok"
    zygote = pool.stats()["zygote_pid"]
    assert isinstance(zygote, int)
    loop = asyncio.get_running_loop()
    pidfd = os.pidfd_open(zygote)
    gone = loop.create_future()
    loop.add_reader(pidfd, gone.set_result, None)
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        await gone  # readable once the zygote has exited
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    first = await run(pool, "acme")  # its warm worker died with the zygote (PDEATHSIG)
    assert first.outcome in ("ok", "runtime_error")
    assert (await run(pool, "acme")).outcome == "ok"
    assert pool.stats()["zygote_pid"] not in (None, zygote)
