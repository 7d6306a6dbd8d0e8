"""What makes a cold start and a warm call cheap, without giving up a sandbox rule.

* A worker keeps its tenant's sources by digest and the supervisor mirrors that set, so a warm
  invocation sends no source; the two sets can never disagree silently (a worker asked for a
  digest it does not hold, or sent a source under another digest, exits).
* The bind frame and the first invocation leave in one write.
* Spares adapt to churn within a bound, and a pool without spares never grows any.

Real zygote and workers throughout; the only double is the supervisor-side ``Services``.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from runtime.sandbox.guest.oslimits import WorkerLimits
from runtime.sandbox.host import pool as supervisor_module
from runtime.sandbox.host.context import InvocationContext
from runtime.sandbox.host.frame_protocol import FrameProtocol
from runtime.sandbox.host.pool import SandboxPool
from runtime.sandbox.host.zygote_client import Worker, ZygoteClient
from runtime.sandbox.shared.contract import SandboxLimits, Trigger
from runtime.sandbox.shared.exits import EXIT_PROTOCOL
from runtime.sandbox.shared.frames import (
    MAX_FRAME_TO_WORKER,
    SOURCE_CACHE_SIZE,
    ConnectionClosed,
    FrameTooLarge,
    InvokeFrame,
    SourceDigests,
    WorkerSources,
    decode_body,
    encode_frame,
    source_digest,
)

EVENT = {"message_options": {"recipient": "+14155550100", "text": "Your code is 123456"}}
LIMITS = SandboxLimits()
TRIGGER: Trigger = "send-phone-message"


def action(tag: str) -> str:
    return f"""
def on_execute_send_phone_message(event, api):
    return {{"tag": "{tag}", "to": event.message_options.recipient}}
"""


def body(frame: bytes) -> dict[str, Any]:
    return decode_body(frame[4:])


def invoke(source: str | bytes, invocation: int = 1, tenant: str = "acme") -> InvokeFrame:
    return InvokeFrame(invocation, tenant, "action", source, TRIGGER, EVENT, LIMITS)


# ------------------------------------------------------------------ the frames


def test_a_source_travels_once_per_worker() -> None:
    first_worker, second_worker = SourceDigests(), SourceDigests()
    first = body(invoke(action("a")).for_worker(first_worker))
    assert first["source"] == action("a")
    assert first["digest"] == source_digest(action("a").encode())
    again = body(invoke(action("a"), 2).for_worker(first_worker))
    assert "source" not in again
    assert again["digest"] == first["digest"]
    assert body(invoke(action("a"), 3).for_worker(second_worker))["source"] == action("a")


def test_bytes_sources_travel_as_base64_under_the_same_digest() -> None:
    sent = body(invoke(action("a").encode()).for_worker(SourceDigests()))
    assert "source" not in sent
    assert sent["digest"] == source_digest(action("a").encode())
    assert isinstance(sent["source_b64"], str)


def test_the_supervisor_mirror_forgets_in_the_workers_order() -> None:
    """Both sides keep SOURCE_CACHE_SIZE sources, first in first out: the oldest is re-sent."""
    held = SourceDigests()
    for i in range(SOURCE_CACHE_SIZE + 1):
        invoke(action(str(i))).for_worker(held)
    assert "source" in body(invoke(action("0")).for_worker(held))
    assert "source" not in body(invoke(action(str(SOURCE_CACHE_SIZE))).for_worker(held))


def test_mirror_and_worker_agree_on_any_sequence() -> None:
    rng = random.Random(7)
    mirror, worker = SourceDigests(), WorkerSources()
    for step in range(2000):
        source = action(str(rng.randrange(3 * SOURCE_CACHE_SIZE)))
        message = body(invoke(source, step).for_worker(mirror))
        if "source" in message:
            worker.remember(message["digest"], message["source"])
        assert worker.get(message["digest"]) == source, f"step {step}"


def test_bad_input_fails_before_a_worker_is_taken() -> None:
    with pytest.raises(TypeError):
        InvokeFrame(1, "acme", "a", action("a"), TRIGGER, {"x": object()}, LIMITS)
    with pytest.raises(TypeError):  # a lone surrogate is not UTF-8
        InvokeFrame(1, "acme", "a", action("\ud800"), TRIGGER, EVENT, LIMITS)
    huge = {"blob": "x" * MAX_FRAME_TO_WORKER}
    with pytest.raises(FrameTooLarge):
        InvokeFrame(1, "acme", "a", action("a"), TRIGGER, huge, LIMITS)


# ------------------------------------------------------------------ a real worker


@pytest.fixture
async def zygote() -> AsyncIterator[ZygoteClient]:
    client = ZygoteClient(lambda worker: None)
    await client.start(probes=(), require_seccomp=False)
    yield client
    await client.aclose()


async def spawn(zygote: ZygoteClient) -> Worker:
    return await zygote.spawn(WorkerLimits(memory_bytes=256 << 20, cpu_seconds=5), warm=False)


async def test_a_real_worker_runs_a_kept_source_without_receiving_it(
    zygote: ZygoteClient,
) -> None:
    worker = await spawn(zygote)
    held = SourceDigests()
    for invocation, tag in enumerate(["a", "b", "a", "b"], start=1):
        frame = invoke(action(tag), invocation).for_worker(held)
        assert ("source" in body(frame)) is (invocation <= 2)
        worker.send(frame)
        reply = await worker.conn.recv()
        assert reply["result"]["outcome"] == "ok", reply
        assert reply["result"]["result"]["tag"] == tag
    worker.kill()


@pytest.mark.parametrize("lie", ["unknown digest", "digest of another source"])
async def test_a_worker_never_runs_something_else_than_the_digest_names(
    zygote: ZygoteClient, lie: str
) -> None:
    worker = await spawn(zygote)
    message = body(invoke(action("a")).for_worker(SourceDigests()))
    if lie == "unknown digest":
        del message["source"]
    else:
        message["source"] = action("b")
    worker.send(encode_frame(message, max_size=MAX_FRAME_TO_WORKER))
    with pytest.raises(ConnectionClosed):
        await worker.conn.recv()
    status = await worker.exited
    assert status is not None
    assert os.waitstatus_to_exitcode(status) == EXIT_PROTOCOL


# ------------------------------------------------------------------ the pool


class _Services:
    async def handle(self, context: InvocationContext, op: str, params: dict[str, Any]) -> Any:
        return None


class Writes:
    """Every transport write of every worker, as the list of frame types it carried."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.writes: list[tuple[int, list[dict[str, Any]]]] = []
        original = FrameProtocol.send

        def send(proto: FrameProtocol, data: bytes) -> None:
            frames, offset = [], 0
            while offset < len(data):
                size = int.from_bytes(data[offset : offset + 4], "big")
                frames.append(decode_body(data[offset + 4 : offset + 4 + size]))
                offset += 4 + size
            self.writes.append((id(proto), frames))
            original(proto, data)

        monkeypatch.setattr(FrameProtocol, "send", send)


@pytest.fixture
async def pools() -> AsyncIterator[list[SandboxPool]]:
    made: list[SandboxPool] = []
    yield made
    for pool in made:
        await pool.aclose()


async def start(made: list[SandboxPool], **kwargs: Any) -> SandboxPool:
    pool = SandboxPool(_Services(), **kwargs)
    made.append(pool)
    await pool.start()
    return pool


async def run(pool: SandboxPool, tenant: str, source: str) -> dict[str, Any]:
    result = await pool.invoke(
        tenant=tenant, name="action", source=source, trigger=TRIGGER, event=EVENT
    )
    assert result.outcome == "ok", result
    assert isinstance(result.result, dict)
    return result.result


async def test_bind_and_first_invoke_in_one_write_then_no_source(
    pools: list[SandboxPool], monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = await start(pools, spare_workers=0)
    seen = Writes(monkeypatch)
    for _ in range(3):
        assert (await run(pool, "acme", action("a")))["tag"] == "a"
    kinds = [[(f["type"], "source" in f) for f in frames] for _, frames in seen.writes]
    assert kinds == [[("bind", False), ("invoke", True)], [("invoke", False)], [("invoke", False)]]
    assert len({proto for proto, _ in seen.writes}) == 1  # one warm worker served all three


async def test_a_new_worker_of_the_same_tenant_gets_the_source_again(
    pools: list[SandboxPool], monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = await start(pools, spare_workers=0, max_workers=1)
    seen = Writes(monkeypatch)
    await run(pool, "acme", action("a"))
    await run(pool, "other", action("a"))  # evicts acme's worker (max_workers=1)
    await run(pool, "acme", action("a"))
    invokes = [f for _, frames in seen.writes for f in frames if f["type"] == "invoke"]
    assert [("source" in f, f["tenant"]) for f in invokes] == [
        (True, "acme"),
        (True, "other"),
        (True, "acme"),
    ]


async def settle(pool: SandboxPool) -> None:
    """Wait for the spares being forked (the pool's own tasks: no sleeping)."""
    while pool._tasks:  # the pool's own spawn tasks, awaited rather than slept on
        await asyncio.gather(*list(pool._tasks))


async def test_spares_grow_under_churn_within_their_bound_and_fall_back(
    pools: list[SandboxPool], monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = await start(pools, spare_workers=1, max_spare_workers=3, max_workers=2)
    await settle(pool)
    assert (pool.stats()["spares"], pool.stats()["spare_target"]) == (1, 1)
    for i in range(12):  # every call a new tenant: a cold start each
        await asyncio.gather(run(pool, f"t{i}a", action("a")), run(pool, f"t{i}b", action("a")))
        stats = pool.stats()
        assert stats["spare_target"] <= 3
        assert stats["spares"] <= 3
    await settle(pool)
    stats = pool.stats()
    assert stats["spare_target"] == 3  # two cold starts at once outran one spare: 1, 2, 3
    assert stats["spares"] == 3
    monkeypatch.setattr(supervisor_module, "SPARE_DECAY", 0.0)
    await run(pool, "t0a", action("a"))  # no miss: quiet since the last one
    assert pool.stats()["spare_target"] == 1


async def test_no_spares_means_none_even_under_churn(pools: list[SandboxPool]) -> None:
    pool = await start(pools, spare_workers=0, max_workers=2)
    for i in range(6):
        await asyncio.gather(run(pool, f"t{i}a", action("a")), run(pool, f"t{i}b", action("a")))
    await settle(pool)
    stats = pool.stats()
    assert (stats["spares"], stats["spare_target"]) == (0, 0)
    assert stats["spawned"] == 12


def test_limits_travel_as_their_model_dump() -> None:
    limits = SandboxLimits(timeout=1.5, max_log_lines=3)
    frame = InvokeFrame(1, "acme", "a", action("a"), TRIGGER, EVENT, limits)
    sent = body(frame.for_worker(SourceDigests()))
    assert sent["limits"] == orjson.loads(orjson.dumps(limits.model_dump()))
    assert sent["event"] == EVENT


async def test_an_evicted_worker_dies_once_its_slot_is_taken(pools: list[SandboxPool]) -> None:
    """The kill of an evicted worker waits until the invocation taking its slot is written,
    but never longer: by the time that invocation returns, the old worker is on its way out
    and its tenant's uid is free again."""
    pool = await start(pools, spare_workers=0, max_workers=1)
    await run(pool, "acme", action("a"))
    (pid,) = pool.idle_pids("acme")
    pidfd = os.pidfd_open(pid)
    try:
        await run(pool, "globex", action("a"))
        assert "acme" not in pool.stats()["tenant_uids"]
        assert pool.stats()["evicted"] == 1
        exited = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(pidfd, exited.set)  # readable once the process has exited
        try:
            await asyncio.wait_for(exited.wait(), 30)  # generous: a loaded CI box
        finally:
            loop.remove_reader(pidfd)
    finally:
        os.close(pidfd)


def test_the_worker_world_holds_no_event_loop_modules() -> None:
    """What the zygote preloads is memory every worker's fork and exit pay for, page by page:
    the host side's asyncio (and its ssl) stays out of it."""
    probe = (
        "import sys\n"
        "from runtime.sandbox.guest import zygote\n"
        "assert zygote._preload() is None\n"
        "print(sorted(m for m in ('asyncio', 'ssl', 'logging', 'concurrent.futures')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
