"""Hostile tenant code ends in its outcome, on time, without holding up other tenants.

Budgets are enforced from outside the worker (SIGKILL at the wall-clock deadline, RLIMIT_CPU,
RLIMIT_AS), so ``except:`` in tenant code changes nothing. The overshoot of a timeout is
asserted (behaviour the pipeline relies on), not benchmarked.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest

from runtime.sandbox.host.context import InvocationContext
from runtime.sandbox.host.pool import SandboxPool
from runtime.sandbox.shared.contract import InvocationResult, SandboxLimits

BUDGET = 0.5
# How late the kill at the deadline may come. Idle it is a few ms; on a loaded 2-core CI machine
# the supervisor's timer and the reaping of the worker wait for a CPU, for hundreds of ms. Code
# that is not killed runs until its 60 s loop ends, or forever: a second tells the two apart.
OVERSHOOT_MS = 1000
# The wall-clock budget of the spinning tenants in the "others are served" tests. A good run
# queued behind a spinner would wait for all of it; a good run itself takes a few ms idle and
# up to hundreds of ms on a loaded CI machine, so the good ones are bounded by half of it.
SPIN_BUDGET = 5.0
EVENT = {"message_options": {"recipient": "+14155550100", "text": "code 1"}}
GOOD = """
def on_execute_send_phone_message(event, api):
    return "fine"
"""


def handler(body: str) -> str:
    lines = body.strip("\n").splitlines()
    return "def on_execute_send_phone_message(event, api):\n" + "\n".join(
        "    " + line for line in lines
    )


SPIN = handler("while True:\n    pass")
SPIN_IN_TRY = handler(
    """
while True:
    try:
        while True:
            pass
    except:
        pass
"""
)
C_LEVEL = handler("return 10 ** 10 ** 8")  # one bytecode that never returns to Python
BUSY_WAIT = handler(
    """
import time
started = time.monotonic()
while time.monotonic() - started < 60:
    pass
"""
)
ALLOCATE = handler("return 'A' * (10 ** 10)")
GROW = handler(
    """
chunks = []
while True:
    chunks.append('x' * (10 ** 7))
"""
)
SWALLOW_MEMORY_ERROR = handler(
    """
try:
    chunks = []
    while True:
        chunks.append('x' * (10 ** 7))
except:  # MemoryError is not even a tenant builtin; a bare except catches it
    chunks = None
    while True:
        pass
"""
)
PRINT_FLOOD = handler(
    """
for i in range(100000):
    print('x' * 1000)
"""
)


class _Services:
    async def handle(self, context: InvocationContext, op: str, params: dict[str, Any]) -> Any:
        return None


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    sandbox = SandboxPool(_Services(), limits=SandboxLimits(timeout=BUDGET), spare_workers=1)
    await sandbox.start()
    yield sandbox
    await sandbox.aclose()


async def run(pool: SandboxPool, source: str, tenant: str = "bad", **kw: Any) -> InvocationResult:
    return await pool.invoke(
        tenant=tenant, name="action", source=source, trigger="send-phone-message", event=EVENT, **kw
    )


async def assert_pool_still_serves(pool: SandboxPool, tenant: str = "bad") -> None:
    result = await run(pool, GOOD, tenant)
    assert (result.outcome, result.result) == ("ok", "fine")


@pytest.mark.parametrize(
    "source",
    [SPIN, SPIN_IN_TRY, C_LEVEL, BUSY_WAIT, SWALLOW_MEMORY_ERROR],
    ids=["spin", "spin-in-try", "c-level", "busy-wait", "swallow-memory-error"],
)
async def test_runaway_code_is_killed_at_the_deadline(pool: SandboxPool, source: str) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await run(pool, source)
    elapsed_ms = (loop.time() - started) * 1000
    assert result.outcome == "timeout", result
    assert BUDGET * 1000 <= result.duration_ms <= BUDGET * 1000 + OVERSHOOT_MS
    assert elapsed_ms <= BUDGET * 1000 + OVERSHOOT_MS
    assert pool.stats()["killed"] == 1
    await assert_pool_still_serves(pool)


@pytest.mark.parametrize("source", [ALLOCATE, GROW], ids=["allocate", "grow"])
async def test_memory_bombs_hit_rlimit_as(pool: SandboxPool, source: str) -> None:
    result = await run(pool, source, limits=SandboxLimits(timeout=5.0))
    assert result.outcome == "memory_limit", result
    assert result.duration_ms < 5000
    await assert_pool_still_serves(pool)


async def test_print_flood_is_output_limit(pool: SandboxPool) -> None:
    limits = SandboxLimits(timeout=5.0)
    result = await run(pool, PRINT_FLOOD, limits=limits)
    assert result.outcome == "output_limit", result
    assert sum(len(line.encode()) + 1 for line in result.logs) <= limits.max_output_bytes
    await assert_pool_still_serves(pool)


async def test_cpu_limit_ends_a_spin_before_the_wall_clock(pool: SandboxPool) -> None:
    result = await run(pool, SPIN, limits=SandboxLimits(timeout=10.0, cpu_seconds=1))
    assert result.outcome == "timeout", result
    assert result.error is not None
    assert "CPU time limit" in result.error
    # At least its 1 s of CPU, and before the 10 s wall clock. Not "within 3 s": a spinner on a
    # loaded 2-core machine gets a share of a core, so 1 s of CPU can take several seconds of
    # wall time (3,021 ms was seen in CI). The error text above shows which limit ended it.
    assert 1000 <= result.duration_ms < 10_000
    await assert_pool_still_serves(pool)


async def test_other_tenants_run_while_one_spins(pool: SandboxPool) -> None:
    limits = SandboxLimits(timeout=SPIN_BUDGET)
    spinners = [asyncio.create_task(run(pool, SPIN, limits=limits)) for _ in range(3)]
    good = []
    for i in range(20):
        good.append(await run(pool, GOOD, tenant=f"good-{i % 4}"))
    assert [r.outcome for r in good] == ["ok"] * 20
    assert not any(task.done() for task in spinners)  # all of that happened while they spun
    assert max(r.duration_ms for r in good) < SPIN_BUDGET * 1000 / 2
    results = await asyncio.gather(*spinners)
    # two run at once (max_workers_per_tenant), the third queues behind them and times out
    assert [r.outcome for r in results] == ["timeout"] * 3
    await assert_pool_still_serves(pool)


async def test_a_mix_of_abuse_does_not_delay_other_tenants(pool: SandboxPool) -> None:
    """A loop, a memory bomb, a "sleep" (busy wait) and a print flood, each from its own
    tenant, while good tenants keep being served at warm-worker speed."""
    spin, finish = SandboxLimits(timeout=SPIN_BUDGET), SandboxLimits(timeout=10.0)
    abuse = {
        "loop": (SPIN, spin),
        "memory": (GROW, finish),  # ends at RLIMIT_AS, however slow a loaded machine is
        "sleep": (BUSY_WAIT, spin),
        "print": (PRINT_FLOOD, finish),
    }
    bad = {
        name: asyncio.create_task(run(pool, source, tenant=f"bad-{name}", limits=limits))
        for name, (source, limits) in abuse.items()
    }
    good = [await run(pool, GOOD, tenant=f"good-{i % 4}") for i in range(40)]

    assert [r.outcome for r in good] == ["ok"] * 40
    assert not bad["loop"].done()  # the good ones were served while it spun
    assert max(r.duration_ms for r in good) < SPIN_BUDGET * 1000 / 2
    outcomes = {name: (await task).outcome for name, task in bad.items()}
    assert outcomes == {
        "loop": "timeout",
        "memory": "memory_limit",
        "sleep": "timeout",
        "print": "output_limit",
    }
    await assert_pool_still_serves(pool)


class _HoldingServices:
    """``api.cache.get`` waits until the test has killed the worker (no sleeping)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def handle(self, context: InvocationContext, op: str, params: dict[str, Any]) -> Any:
        self.entered.set()
        await self.release.wait()
        return None


HOLD = handler('return api.cache.get("hold")')


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
async def test_a_worker_killed_from_outside_is_reported_as_killed(signum: int) -> None:
    """Someone else's kill is neither a timeout nor out of memory: it says what happened."""
    services = _HoldingServices()
    pool = SandboxPool(services, limits=SandboxLimits(timeout=10.0), spare_workers=0)
    await pool.start()
    try:
        assert (await run(pool, GOOD, "victim")).outcome == "ok"
        [pid] = pool.idle_pids("victim")
        held = asyncio.create_task(run(pool, HOLD, "victim"))  # reuses that warm worker
        await services.entered.wait()  # the worker waits for its api call's answer
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(pid)
        gone = loop.create_future()
        loop.add_reader(pidfd, gone.set_result, None)
        try:
            os.kill(pid, signum)
            await gone  # readable once the worker has exited
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        services.release.set()  # the supervisor finds the worker dead when it answers
        result = await held
        assert result.outcome == "worker_killed", result
        assert result.error == f"worker killed by {signal.Signals(signum).name}"
        assert result.duration_ms < 10_000  # judged from the exit status, not the deadline
        await assert_pool_still_serves(pool, "victim")
    finally:
        await pool.aclose()
