"""StoreExecutor: its own bounded threads, a bounded queue, deadlines that free the caller."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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


def holding(ran: list[str]) -> tuple[Callable[[], None], threading.Event, threading.Event]:
    """A store call that holds its thread until ``release`` is set (``running`` once it runs),
    then records itself in ``ran``."""
    running, release = threading.Event(), threading.Event()

    def block() -> None:
        running.set()
        release.wait()
        ran.append("block")

    return block, running, release


async def test_a_call_that_timed_out_in_the_queue_never_runs_and_a_running_one_says_so() -> None:
    """A call that timed out in the queue never runs (the next one still does, in order). One
    that timed out while running may still complete (a row may still be written): its error
    says so, so that a sender never reports "nothing stored" for it."""
    executor = StoreExecutor(max_workers=1)
    ran: list[str] = []
    block, running, release = holding(ran)
    try:
        # its deadline comes once it runs (started at once: the thread is idle)
        busy = asyncio.ensure_future(executor.run(block, timeout=0.5))
        await asyncio.to_thread(running.wait)
        with pytest.raises(StoreUnavailableError) as queued:
            await executor.run(ran.append, "queued", timeout=0.05)
        with pytest.raises(StoreUnavailableError) as started:
            await busy
        release.set()
        await executor.run(ran.append, "next", timeout=60)
    finally:
        release.set()
        executor.shutdown()
    assert started.value.running is True
    assert "still running and may complete" in str(started.value)
    assert queued.value.running is False
    assert str(queued.value).endswith("did not answer within 0.05 s")
    assert ran == ["block", "next"]  # the running call completed; the queued one never ran


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


class Batches:
    """A batched store call that records each batch; the first one waits for ``release``."""

    def __init__(self) -> None:
        self.running, self.release = threading.Event(), threading.Event()
        self.seen: list[list[Any]] = []

    def __call__(self, items: list[Any]) -> list[Any]:
        self.seen.append(list(items))
        if len(self.seen) == 1:
            self.running.set()
            self.release.wait()
        return [ValueError(f"bad {item}") if item == "bad" else item.upper() for item in items]


@contextmanager
def batch_executor(max_workers: int) -> Iterator[tuple[StoreExecutor, Batches]]:
    """An executor and a :class:`Batches` whose first batch waits for ``release``; both let go
    at the end, whatever the test did."""
    executor = StoreExecutor(max_workers=max_workers)
    batch = Batches()
    try:
        yield executor, batch
    finally:
        batch.release.set()
        executor.shutdown()


async def test_calls_queued_while_a_batch_runs_go_together() -> None:
    with batch_executor(max_workers=4) as (executor, batch):
        first = executor.submit_batched(batch, "a", timeout=60)
        await asyncio.to_thread(batch.running.wait)
        later = [executor.submit_batched(batch, item, timeout=60) for item in ("b", "bad", "c")]
        assert executor.pending == 4
        batch.release.set()
        assert await first == "A"
        outcomes = await asyncio.gather(*later, return_exceptions=True)
        assert [str(o) for o in outcomes] == ["B", "bad bad", "C"]  # one item's error is its own
        assert batch.seen == [["a"], ["b", "bad", "c"]]  # one batch for all that waited
        assert executor.pending == 0


async def test_a_batched_call_that_timed_out_in_the_queue_never_runs() -> None:
    with batch_executor(max_workers=4) as (executor, batch):
        first = executor.submit_batched(batch, "a", timeout=60)
        await asyncio.to_thread(batch.running.wait)
        with pytest.raises(StoreUnavailableError, match=r"did not answer within 0\.05 s"):
            await executor.submit_batched(batch, "late", timeout=0.05)
        batch.release.set()
        await first
        assert await executor.submit_batched(batch, "next", timeout=60) == "NEXT"
        assert batch.seen == [["a"], ["next"]]


async def test_a_batch_that_raises_fails_each_call_in_it_and_shutdown_fails_the_queued() -> None:
    executor = StoreExecutor(max_workers=1)

    def broken(items: list[Any]) -> list[Any]:
        raise StoreUnavailableError("database x: claim failed: locked")

    calls = [executor.submit_batched(broken, n, timeout=60) for n in range(3)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(o, StoreUnavailableError) for o in outcomes)
    batch = Batches()
    running = executor.submit_batched(batch, "a", timeout=60)
    await asyncio.to_thread(batch.running.wait)
    queued = executor.submit_batched(batch, "b", timeout=60)
    executor.shutdown(wait=False)
    batch.release.set()
    assert await running == "A"  # the running batch finishes ...
    with pytest.raises(StoreUnavailableError, match="closed"):
        await queued  # ... and what waited for the next one is refused, like a queued call
    with pytest.raises(StoreUnavailableError, match="closed"):
        await executor.submit_batched(batch, "c", timeout=60)


async def test_a_busy_batch_kind_does_not_starve_plain_calls() -> None:
    """Batches keep coming (claims at 50 in flight): a plain call queued meanwhile runs
    before the next batch, not after the stream dries up."""
    order: list[str] = []
    with batch_executor(max_workers=1) as (executor, batch):

        def recorded(items: list[Any]) -> list[Any]:
            order.append(f"batch {items}")
            return batch(items)

        first = executor.submit_batched(recorded, "a", timeout=60)
        await asyncio.to_thread(batch.running.wait)
        more = executor.submit_batched(recorded, "b", timeout=60)
        plain = executor.submit(order.append, "plain", timeout=60)
        batch.release.set()
        await asyncio.gather(first, more, plain)
        assert order == ["batch ['a']", "plain", "batch ['b']"]


async def test_an_outcome_after_the_deadline_goes_to_late() -> None:
    late: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    with batch_executor(max_workers=1) as (executor, batch):
        slow = executor.submit_batched(batch, "a", timeout=0.05, late=late.set_result)
        await asyncio.to_thread(batch.running.wait)
        with pytest.raises(StoreUnavailableError, match="did not answer"):
            await slow
        batch.release.set()
        assert await late == "A"  # a claim won too late: the pipeline gives the key back


async def test_also_is_resolved_by_the_same_wake_as_a_value_and_left_alone_otherwise() -> None:
    """The pipeline's caller resumes with its completion's wake (no extra loop iteration),
    but only when the completion succeeded: a failed one changes the report first."""
    loop = asyncio.get_running_loop()
    with batch_executor(max_workers=1) as (executor, batch):
        batch.release.set()
        caller: asyncio.Future[None] = loop.create_future()
        stored = executor.submit_batched(batch, "a", timeout=60, also=caller)
        seen: list[bool] = []
        stored.add_done_callback(lambda _: seen.append(caller.done()))
        assert await stored == "A"
        assert seen == [True]  # already resolved when the completion's callbacks ran
        failed_caller: asyncio.Future[None] = loop.create_future()
        with pytest.raises(ValueError, match="bad bad"):
            await executor.submit_batched(batch, "bad", timeout=60, also=failed_caller)
        assert not failed_caller.done()


async def test_also_is_not_resolved_for_an_outcome_that_came_after_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    late: asyncio.Future[Any] = loop.create_future()
    caller: asyncio.Future[None] = loop.create_future()
    with batch_executor(max_workers=1) as (executor, batch):
        slow = executor.submit_batched(batch, "a", timeout=0.05, late=late.set_result, also=caller)
        await asyncio.to_thread(batch.running.wait)
        with pytest.raises(StoreUnavailableError, match="did not answer"):
            await slow
        batch.release.set()
        assert await late == "A"
        assert not caller.done()  # told it timed out: the pipeline reports that instead


async def test_a_plain_call_answering_after_its_deadline_gives_its_value_to_late() -> None:
    """A default-sender reservation that counted after its caller gave up is given back."""
    loop = asyncio.get_running_loop()
    late: asyncio.Future[Any] = loop.create_future()
    executor = StoreExecutor(max_workers=1)
    running, release = threading.Event(), threading.Event()

    def slow() -> str:
        running.set()
        release.wait(10)
        return "counted"

    try:
        call = executor.submit(slow, timeout=0.05, late=late.set_result)
        await asyncio.to_thread(running.wait)
        with pytest.raises(StoreUnavailableError, match="still running"):
            await call
        release.set()
        assert await late == "counted"
    finally:
        release.set()
        executor.shutdown()
