"""StoreExecutor: its own bounded threads, a bounded queue, deadlines that free the caller."""

from __future__ import annotations

import asyncio
import threading

import pytest

from runtime.errors import StoreUnavailableError
from runtime.store import StoreExecutor


async def test_a_full_queue_refuses_at_once_instead_of_growing() -> None:
    executor = StoreExecutor(max_workers=1, max_pending=2)
    running, release = threading.Event(), threading.Event()

    def block() -> str:
        running.set()
        release.wait()
        return "done"

    try:
        first = asyncio.create_task(executor.run(block, timeout=60))
        second = asyncio.create_task(executor.run(lambda: "queued", timeout=60))
        # Both tasks ran up to their await while the loop waited for this: one call running,
        # one queued.
        await asyncio.to_thread(running.wait)
        assert executor.pending == 2
        with pytest.raises(StoreUnavailableError, match="limit 2"):
            await executor.run(lambda: "third", timeout=60)
        release.set()
        assert list(await asyncio.gather(first, second)) == ["done", "queued"]
        assert executor.pending == 0
    finally:
        release.set()
        executor.shutdown()


async def test_a_call_that_timed_out_in_the_queue_never_runs() -> None:
    executor = StoreExecutor(max_workers=1)
    running, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def block() -> None:
        running.set()
        release.wait()

    try:
        busy = asyncio.create_task(executor.run(block, timeout=60))
        await asyncio.to_thread(running.wait)
        with pytest.raises(StoreUnavailableError, match=r"did not answer within 0\.05 s"):
            await executor.run(ran.append, "late", timeout=0.05)
        release.set()
        await busy
        await executor.run(ran.append, "next", timeout=60)  # FIFO: after the timed-out one
        assert ran == ["next"]
    finally:
        release.set()
        executor.shutdown()


async def test_errors_reach_the_caller_and_threads_are_the_stores_own() -> None:
    executor = StoreExecutor(max_workers=2)

    def fail() -> None:
        raise StoreUnavailableError("database x: claim failed: locked")

    try:
        with pytest.raises(StoreUnavailableError, match="claim failed"):
            await executor.run(fail, timeout=5)
        name = await executor.run(lambda: threading.current_thread().name, timeout=5)
        assert name.startswith("phone-actions-store")
    finally:
        executor.shutdown()
    with pytest.raises(StoreUnavailableError, match="closed"):
        await executor.run(lambda: None, timeout=5)
