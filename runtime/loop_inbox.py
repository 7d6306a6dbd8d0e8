"""Calls from other threads onto one event loop: one pipe byte per batch, not a socket per call.

The store's threads and the log writer hand every outcome back to the loop. asyncio's
``call_soon_threadsafe`` does that through the loop's self-pipe, a socket pair that the loop
drains with two ``recv`` calls per wake; measured here, that return path makes a thread hop
(wake a thread, come back) cost half as much again as a plain pipe the loop watches with
``add_reader`` (``bench/pipeline.py`` prints the hop's cost). A report waits for one hop (its
log line) and a keyed one for two (the claim, then the record and the line), so the hop is
most of what the pipeline adds to a provider's round trip.

One inbox per running loop, shared by every sender (:func:`inbox_for`). A sender appends and
writes one byte only when no drain is scheduled yet; the drain reads the pipe, clears that
mark, then empties the queue, so an item appended meanwhile is either taken by this drain or
schedules the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["LoopInbox", "inbox_for"]

_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopInbox] = (
    weakref.WeakKeyDictionary()
)
_inboxes_lock = threading.Lock()


class LoopInbox:
    """Runs ``fn(*args)`` on ``loop`` for any thread that :meth:`post`\\ s it, in order."""

    __slots__ = (
        "__weakref__",
        "_closed",
        "_items",
        "_lock",
        "_loop",
        "_read_fd",
        "_scheduled",
        "_write_fd",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Made on ``loop``'s own thread (it registers a reader there)."""
        self._loop = weakref.ref(loop)  # the loop holds the inbox (its reader), not back
        self._items: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._scheduled = False
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        # closed with its loop (see inbox_for), or once nobody holds the inbox
        self._closed = weakref.finalize(self, _close_pipe, self._read_fd, self._write_fd)
        self._lock = threading.Lock()  # a wake is never written to a pipe closed meanwhile
        try:
            loop.add_reader(self._read_fd, self._drain)
        except BaseException:
            self._closed()
            raise

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the posted calls run on (None once it is gone)."""
        return self._loop()

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """From any thread: run ``fn(*args)`` on the loop soon. Never raises; a closed loop
        runs nothing (nobody is waiting there any more)."""
        if not self._closed.alive:
            return
        self._items.append((fn, args))
        if self._scheduled:
            return
        self._scheduled = True
        with self._lock:
            if not self._closed.alive:  # its loop closed: nobody is waiting any more
                self._items.clear()
                return
            with contextlib.suppress(BlockingIOError):  # the pipe is full of wakes already
                os.write(self._write_fd, b"\0")

    def close(self) -> None:
        """Close the pipe (its loop is closed): later posts are dropped."""
        with self._lock:
            self._closed()
            self._items.clear()

    def _drain(self) -> None:
        with contextlib.suppress(OSError):  # BlockingIOError: a wake another drain took
            os.read(self._read_fd, 4096)
        self._scheduled = False
        items = self._items
        while items:
            fn, args = items.popleft()
            try:
                fn(*args)
            except Exception as exc:  # as asyncio reports a failing callback; the rest still run
                loop = self._loop()
                if loop is not None:
                    loop.call_exception_handler(
                        {"message": f"exception in {fn!r} posted to the loop", "exception": exc}
                    )


def _close_pipe(read_fd: int, write_fd: int) -> None:
    os.close(read_fd)
    os.close(write_fd)


def inbox_for(loop: asyncio.AbstractEventLoop) -> LoopInbox:
    """The running ``loop``'s inbox, made on first use. Inboxes of loops closed since are
    closed here (a process that makes many loops, such as a test suite, keeps no pipes of
    old ones); a post to a closed inbox is dropped under its lock, so a thread never writes
    to a descriptor number that was closed and reused."""
    inbox = _inboxes.get(loop)
    if inbox is None:
        with _inboxes_lock:
            for old_loop, old in list(_inboxes.items()):  # loops closed since: their pipes
                if old_loop.is_closed():
                    old.close()
                    del _inboxes[old_loop]
            inbox = _inboxes.get(loop)
            if inbox is None:
                inbox = _inboxes[loop] = LoopInbox(loop)
    return inbox
