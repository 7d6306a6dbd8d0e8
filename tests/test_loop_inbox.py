"""LoopInbox: other threads' calls run on the loop, in order, one pipe byte per batch."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from typing import Any

from runtime.loop_inbox import inbox_for


async def test_calls_posted_from_threads_run_on_the_loop_in_order() -> None:
    loop = asyncio.get_running_loop()
    inbox = inbox_for(loop)
    ran: list[tuple[int, bool]] = []
    done: asyncio.Future[None] = loop.create_future()
    loop_thread = threading.get_ident()

    def record(number: int) -> None:
        ran.append((number, threading.get_ident() == loop_thread))
        if number == 999:
            done.set_result(None)

    def post_all() -> None:
        for number in range(1000):
            inbox.post(record, number)

    await asyncio.to_thread(post_all)
    await done
    assert ran == [(number, True) for number in range(1000)]


async def test_a_burst_of_posts_wakes_the_loop_once_not_once_per_call() -> None:
    """The wake is a byte in a pipe, written only when no drain is scheduled yet: calls
    posted before the loop drains ride on one wake (here the loop cannot drain meanwhile)."""
    loop = asyncio.get_running_loop()
    inbox = inbox_for(loop)
    done: asyncio.Future[None] = loop.create_future()
    ran: list[int] = []
    writes: list[int] = []
    real_write = os.write

    def counted_write(fd: int, data: Any) -> int:
        writes.append(fd)
        return real_write(fd, data)

    os.write = counted_write
    try:
        for number in range(500):
            inbox.post(ran.append, number)
        inbox.post(done.set_result, None)
    finally:
        os.write = real_write
    await done
    assert (len(writes), ran) == (1, list(range(500)))


async def test_a_failing_call_is_reported_and_the_next_ones_still_run() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    done: asyncio.Future[str] = loop.create_future()

    def broken() -> None:
        raise RuntimeError("a bug in a posted call")

    def post_both() -> None:
        inbox = inbox_for(loop)
        inbox.post(broken)
        inbox.post(done.set_result, "next")

    try:
        await asyncio.to_thread(post_both)
        assert await done == "next"
    finally:
        loop.set_exception_handler(None)
    assert [str(context["exception"]) for context in reported] == ["a bug in a posted call"]


def test_one_inbox_per_loop_and_its_pipe_closes_with_the_loop() -> None:
    """A process that makes many loops (a test suite, repeated asyncio.run) keeps no pipes
    of the loops it dropped."""
    loop = asyncio.new_event_loop()
    try:
        inbox = loop.run_until_complete(_inbox_of_running_loop())
        assert loop.run_until_complete(_inbox_of_running_loop()) is inbox
        other = asyncio.new_event_loop()
        try:
            assert other.run_until_complete(_inbox_of_running_loop()) is not inbox
        finally:
            other.close()
        read_fd = inbox._read_fd
        pipe = _identity(read_fd)
        assert pipe is not None  # open while the loop lives
    finally:
        loop.close()
    del inbox, loop
    gc.collect()
    assert _identity(read_fd) != pipe  # closed (or its number reused by another file)


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        found = os.fstat(fd)
    except OSError:
        return None
    return found.st_dev, found.st_ino


async def _inbox_of_running_loop() -> Any:
    return inbox_for(asyncio.get_running_loop())


def test_the_pipe_of_a_closed_loop_is_closed_when_another_loop_asks() -> None:
    """Loops closed but still referenced (a test keeps one) give their pipes back at the next
    loop's first hand-off; a late post from a store thread to them is dropped, not written."""
    first = asyncio.new_event_loop()
    inbox = first.run_until_complete(_inbox_of_running_loop())
    pipe = _identity(inbox._read_fd)
    first.close()
    second = asyncio.new_event_loop()
    try:
        second.run_until_complete(_inbox_of_running_loop())
    finally:
        second.close()
    assert _identity(inbox._read_fd) != pipe
    inbox.post(print, "never")  # does not raise, runs nothing
    assert not inbox._items
