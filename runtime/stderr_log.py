"""The service's own log lines (one access line a request, warnings, errors) on stderr,
written by a thread of their own, in batches.

Two costs are kept off the event loop. A slow reader of stderr (a full pipe) would block
whoever writes: the writer thread takes that wait. And waking a thread for every line costs
more than the line itself: at a few hundred requests a second, a wake-up per access line
(a futex, then the two threads trading the GIL) took ~600 us of CPU a request, a quarter of
the server's whole cost of a delivery. So the writer, once woken by a line, lingers
``LINGER_SECONDS`` for the lines that follow and writes them all at once: one wake-up per
batch, and a line reaches stderr at most that much later. Stopping cuts the linger short
and writes every line still queued.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import TextIO

__all__ = ["LINGER_SECONDS", "BatchedStderr", "configure"]

LINGER_SECONDS = 0.05


class BatchedStderr(logging.Handler):
    """Queues each record as it is (formatting waits for the writer thread) and has a thread
    hand the queued records to ``target`` in batches."""

    def __init__(self, target: logging.Handler, linger: float = LINGER_SECONDS) -> None:
        super().__init__()
        self._target = target
        self._linger = linger
        self._records: deque[logging.LogRecord] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stderr-log", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        # deque.append is atomic; the event is set only when the writer may be asleep (it
        # clears the event before it drains, so a record appended before that is drained)
        self._records.append(record)
        if not self._wake.is_set():
            self._wake.set()

    def stop(self) -> None:
        """Write every queued record, then end the thread (idempotent)."""
        self._stopping.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._stopping.wait(self._linger)  # the batch: whatever comes meanwhile
            self._wake.clear()
            self._drain()
            if self._stopping.is_set():
                self._drain()
                return

    def _drain(self) -> None:
        records = self._records
        while records:
            self._target.handle(records.popleft())


def configure(
    level: int,
    fmt: str,
    request_filter: logging.Filter,
    stream: TextIO | None = None,
) -> Callable[[], None]:
    """Send the root logger's records at ``level`` and above to stderr through a
    :class:`BatchedStderr`; returns the flush to call on the way out (once is enough; it is
    also registered with ``atexit``): it writes what is queued, and later lines go straight
    to stderr. ``request_filter`` runs on the caller's thread, where the request id is."""
    import atexit

    target = logging.StreamHandler(stream if stream is not None else sys.stderr)
    target.setFormatter(logging.Formatter(fmt))
    batched = BatchedStderr(target)
    batched.addFilter(request_filter)
    root = logging.getLogger()
    root.addHandler(batched)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))  # a line per migration
    stopped: list[bool] = []

    def flush() -> None:
        if not stopped:
            stopped.append(True)
            root.removeHandler(batched)
            batched.stop()
            target.addFilter(request_filter)  # not before: the writer thread has no request
            root.addHandler(target)

    atexit.register(flush)
    return flush
