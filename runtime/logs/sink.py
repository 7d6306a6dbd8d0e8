"""The JSON Lines log sink: every report's events handed to the OS before the report returns.

One writer thread per sink takes every line submitted since its last write and appends them
with a single ``os.write`` on an ``O_APPEND`` fd: a report waits for one syscall shared with
whatever else is in flight, never for a timer, and nothing touches the file on the event loop.
Before each write the thread checks that the path still names its fd (rotation, deletion) and
reopens it when not. A write that fails is reported (``logging.error``, rate-limited, plus
counters) and its lines are kept for the next write, up to a bound past which they are dropped
and counted: a full disk never raises into a delivery, and never goes unnoticed.

At close, kept lines the file still refuses are tried again for ``CLOSE_RETRY_SECONDS`` at most
(a shutdown must end), then written whole to stderr, after one line naming the file and the
count, so that the service's journal holds them for an operator to append to the file: a report
returned before a shutdown on a full disk keeps its events. Only lines stderr refuses too are
dropped (and counted) there.

A write cut short (a full disk, a file size limit) leaves part of a line at the file's end. That
line is kept whole and written again whole, never its rest: the rest appended later would land
after another process's lines, in a new file after a rotation, or after a restart's first line.
The sink's next write starts on a fresh line instead: after a failed write and after (re)opening
the file (start-up, rotation), the writer reads the file's last byte (on its own thread) and
starts with ``b"\\n"`` when it is not one. The part stays in the file as one line that does not
parse: reported and counted (``partial_lines``), never silent. A sink whose writes succeed does
not look (two syscalls per write): another process's next line can still land on the part.

A thread that is not the event loop may also write lines itself (:meth:`write_here`): the
pipeline's store thread writes a keyed delivery's lines beside completing its idempotency
record, so that delivery makes one thread hop at the end instead of two. Every write, the
writer thread's or another's, holds the sink's write lock.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import queue
import stat
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any, TypeAlias

from runtime.events import DeliveryReport, PhoneMessageRequest
from runtime.logs.events import json_lines
from runtime.logs.files import describe, ends_line, open_for_append, open_sink_file
from runtime.loop_inbox import LoopInbox, inbox_for

__all__ = ["JsonLinesLogSink", "PendingLines"]

log = logging.getLogger("runtime.logs")

MAX_PENDING_LINES = 10_000  # lines kept for retry while the file cannot be written
RETRY_INTERVAL = 1.0  # seconds between retries of kept lines when no new event arrives
CLOSE_RETRY_SECONDS = 2.0  # at close: how long kept lines are retried before going to stderr
CLOSE_RETRY_INTERVAL = 0.25  # at close: seconds between those retries
REPORT_INTERVAL = 10.0  # seconds between two error records about the same failing file

# an async caller's loop (its inbox) and future, or a held lock a blocking caller waits on
_Waiter: TypeAlias = (
    "tuple[LoopInbox, asyncio.Future[None]]"
    " | tuple[LoopInbox, asyncio.Future[None], asyncio.Future[None]]"
    " | threading.Lock"
)
_Item: TypeAlias = "tuple[list[bytes], _Waiter]"
_NOTHING: Any = object()
_FLUSH: list[bytes] = []  # flush()'s marker: a write attempt even while the file fails
_WAKE: Any = threading.Lock()  # a writer-thread wake with nobody to tell (see write_here)
_open_sinks: weakref.WeakSet[JsonLinesLogSink] = weakref.WeakSet()
_STDERR = 2  # where lines the file still refuses at close go (the fd: sys.stderr may be text)


class PendingLines:
    """One report's lines, written exactly once by whichever side takes them first: another
    thread with :meth:`JsonLinesLogSink.write_here`, or the event loop with
    :meth:`JsonLinesLogSink.write_pending` when that thread never got to them."""

    __slots__ = ("_taken", "lines")

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self._taken = threading.Lock()

    def take(self) -> bool:
        """True for the first caller only: that one writes the lines."""
        return self._taken.acquire(blocking=False)


class JsonLinesLogSink:
    """Appends each report's log events to ``path``, one JSON object per line.

    :meth:`write` (async) and :meth:`write_blocking` return once the lines were handed to the
    OS, or the write failed and was reported; neither raises. ``failures``, ``last_error``,
    ``dropped``, ``written_to_stderr`` and ``partial_lines`` tell a health check what went
    wrong. ``close_retry``: seconds :meth:`close` keeps retrying lines the file refuses before
    it writes them to stderr.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_pending_lines: int = MAX_PENDING_LINES,
        report_interval: float = REPORT_INTERVAL,
        close_retry: float = CLOSE_RETRY_SECONDS,
    ) -> None:
        self.path = path
        self._close_retry = close_retry
        self._fd: int | None = open_sink_file(path)
        opened = os.fstat(self._fd)
        self._fd_id = _identity(opened)  # the open file's (st_dev, st_ino): fixed
        self._regular = stat.S_ISREG(opened.st_mode)  # not a FIFO, not a device
        self._path_str = os.fspath(path)
        self._max_pending = max_pending_lines
        # SimpleQueue and lock waiters: a round trip costs a third of a Condition's (C, not
        # Python); _lock orders the close marker after every item submitted before close().
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        # held by every write (the writer thread's and write_here's): the file state below
        self._write_lock = threading.Lock()
        self._closing = False
        self._told_closed = False
        # below: the writing state (read by others, written only under _write_lock)
        self._retry: list[bytes] = []
        self._failures = 0
        self._dropped = 0
        self._dropped_closed = 0  # lines that came after close (under _lock)
        self._written_to_stderr = 0  # lines the file still refused at close: on stderr instead
        self._last_error: str | None = None
        self._last_reason = ""  # the latest failure without the path: "No space left ... (ENOSPC)"
        self._failures_report = _Every(report_interval)
        self._drops_report = _Every(report_interval)
        self._failing = False
        self._attempted_at = 0.0
        # whether the file may end in part of a line: read its last byte before the next write
        # (true once opened, and after a failed write); whether that part is this sink's own
        self._check_end = True
        self._cut = False
        self._partial_lines = 0
        self._partials_report = _Every(report_interval)
        self._thread = threading.Thread(
            target=self._run, name=f"log-writer {path.name}", daemon=True
        )
        self._thread.start()
        _open_sinks.add(self)

    # -- what callers use ---------------------------------------------------------------------

    @property
    def failures(self) -> int:
        """Writes that failed (each retried with the next one)."""
        return self._failures

    @property
    def last_error(self) -> str | None:
        """The latest failure, ``"<path>: No space left on device (ENOSPC)"``."""
        return self._last_error

    @property
    def dropped(self) -> int:
        """Lines lost: past the retry bound, submitted after :meth:`close`, or refused at close
        by the file and by stderr both. Lines written to stderr instead are not dropped (see
        :attr:`written_to_stderr`)."""
        return self._dropped + self._dropped_closed

    @property
    def written_to_stderr(self) -> int:
        """Lines the file still refused when :meth:`close` ended its retries, written whole to
        stderr instead (after a line naming the file and their count): not in the file, not
        lost; an operator appends them to the file."""
        return self._written_to_stderr

    @property
    def partial_lines(self) -> int:
        """Lines of the file that do not parse because a write was cut short (a full disk):
        those this sink's writes cut (each written again whole, on a line of its own), and
        those it found unended at the file's end (another process's, or an earlier run's) and
        started its next line after."""
        return self._partial_lines

    async def write(
        self,
        request: PhoneMessageRequest,
        report: DeliveryReport,
        *,
        also: asyncio.Future[None] | None = None,
        since: int = 0,
    ) -> None:
        """Resolve once the report's lines were handed to the OS (or failed and were reported).

        Cancelling the caller does not cancel the write: the lines are the writer's already.
        ``also`` (a future of the same loop) is resolved by the same wake: the pipeline's
        caller then resumes in the same loop iteration as the delivery task, not two later.
        It is left alone when nothing was submitted (no lines, closed sink). ``since``: the
        report's first attempts already logged (:func:`runtime.logs.events.log_events`).
        """
        lines = _encode(request, report, since)
        if not lines:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        inbox = inbox_for(loop)
        if self._submit(lines, (inbox, future) if also is None else (inbox, future, also)):
            await future

    async def write_lines(self, lines: list[bytes]) -> None:
        """:meth:`write` for lines made elsewhere (the Verify API's events, made with
        :func:`runtime.logs.events.event_lines`): the same file, thread and guarantees."""
        if not lines:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self._submit(list(lines), (inbox_for(loop), future)):
            await future

    def write_blocking(self, request: PhoneMessageRequest, report: DeliveryReport) -> None:
        """:meth:`write` for synchronous callers (tools, tests): blocks until written."""
        lines = _encode(request, report)
        if not lines:
            return
        self._submit_and_wait(lines)

    def pending(self, request: PhoneMessageRequest, report: DeliveryReport) -> PendingLines | None:
        """The report's lines, to be written by :meth:`write_here` or :meth:`write_pending`
        (None when there are none)."""
        lines = _encode(request, report)
        return PendingLines(lines) if lines else None

    def write_here(self, *pending: PendingLines) -> None:
        """Write the lines of each ``pending`` no other side took, in one write on the calling
        thread: blocking, for a thread that is not the event loop. Returns once they were
        handed to the OS, or the write failed and was reported (they are then kept and
        retried); never raises."""
        with self._write_lock:
            lines = [line for each in pending if each.take() for line in each.lines]
            if not lines:
                return
            with self._lock:
                closing = self._closing
            if not closing:
                try:
                    self._write(lines, force=False)
                except Exception:  # a bug here must not reach the store call it rides on
                    log.exception("log events: writing to %s failed", self.path)
                kept = bool(self._retry)
        if closing:
            self._refuse_closed(len(lines))
            return
        if not kept:
            return
        # Kept for a retry: the writer thread, maybe asleep with nothing kept, retries them.
        with self._lock:
            if not self._closing:
                self._queue.put(([], _WAKE))

    def hand_over(self, pending: PendingLines) -> None:
        """From the event loop, without waiting: queue ``pending`` for the writer thread,
        unless another side took it (a delivery task cancelled while its store call waited,
        as at a loop's teardown). Never raises."""
        if pending.take():
            self._submit(pending.lines, _WAKE)

    async def write_pending(self, pending: PendingLines) -> None:
        """On the event loop: write ``pending`` through the writer thread when no other thread
        took it, else wait until that thread's write is over. Resolves like :meth:`write`."""
        if pending.take():
            await self.write_lines(pending.lines)
            return
        # The taker wrote while holding the write lock it took the lines under; the writer
        # thread's next write holds that lock too, so this returns after the taker's write.
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self._submit([], (inbox_for(loop), future), quiet=True):
            await future

    def flush(self) -> None:
        """Block until everything submitted so far was written (or failed and was reported)."""
        if not self._closing:
            self._submit_and_wait(_FLUSH, quiet=True)

    def close(self) -> None:
        """Write what is pending, stop the thread and close the file. Idempotent.

        Lines the file refuses are tried again for ``close_retry`` seconds at most, then
        written to stderr (:attr:`written_to_stderr`): a full disk delays a shutdown by that
        much, never more, and loses only what stderr refuses too."""
        with self._lock:
            if not self._closing:
                self._closing = True
                self._queue.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join()
        with self._write_lock, self._lock:  # after a write_here still under way
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        _open_sinks.discard(self)

    async def aclose(self) -> None:
        """:meth:`close` for a running event loop: the wait for a stalled file (and the retries
        of a failing one) happens on a helper thread, so shutting down never blocks the loop."""
        loop = asyncio.get_running_loop()
        closed: asyncio.Future[None] = loop.create_future()

        def close() -> None:
            try:
                self.close()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                    loop.call_soon_threadsafe(_resolve, [closed])

        threading.Thread(target=close, name=f"log-close {self.path.name}", daemon=True).start()
        await closed

    # -- submission ----------------------------------------------------------------------------

    def _submit(self, lines: list[bytes], waiter: _Waiter, *, quiet: bool = False) -> bool:
        """Queue ``lines`` for the writer; false when the sink is closed (lines dropped)."""
        with self._lock:
            if not self._closing:
                self._queue.put((lines, waiter))
                return True
        if not quiet:
            self._refuse_closed(len(lines))
        return False

    def _refuse_closed(self, count: int) -> None:
        """``count`` lines came after close: dropped, counted, reported once."""
        with self._lock:
            self._dropped_closed += count
            first, self._told_closed = not self._told_closed, True
        if first:  # once: ``dropped`` counts the rest
            log.error("log events for %s dropped: the log sink is closed", self.path)

    def _submit_and_wait(self, lines: list[bytes], *, quiet: bool = False) -> None:
        done = threading.Lock()
        done.acquire()
        if self._submit(lines, done, quiet=quiet):
            done.acquire()  # released by the writer once the lines are out

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        closing = False
        while not closing:
            batch: list[_Item] = []
            try:
                item = self._queue.get(timeout=RETRY_INTERVAL if self._retry else None)
            except queue.Empty:  # nothing new: retry the kept lines
                item = _NOTHING
            while item is not _NOTHING:  # everything submitted meanwhile: the same write
                if item is None:
                    closing = True  # the marker comes after every item submitted
                    break
                batch.append(item)
                item = self._queue.get_nowait() if not self._queue.empty() else _NOTHING
            if batch or self._retry:
                force = closing or any(lines is _FLUSH for lines, _ in batch)
                try:
                    with self._write_lock:
                        self._write([line for lines, _ in batch for line in lines], force=force)
                except Exception:  # a bug here must not leave callers waiting forever
                    log.exception("log events: the writer for %s failed", self.path)
                finally:
                    self._complete(batch)
        self._retry_at_close()
        with self._write_lock:
            self._give_up()

    def _write(self, new_lines: list[bytes], *, force: bool) -> None:
        """Append the kept lines then ``new_lines`` in one ``os.write``; keep what failed.

        While the file fails, new lines join the kept ones and the file is tried again once per
        ``RETRY_INTERVAL`` (or on flush and close), not per event: a full disk costs no syscall
        and no copy of the kept lines per delivery.
        """
        lines = self._retry + new_lines if self._retry else new_lines
        self._retry = []
        now = time.monotonic()
        if self._failing and not force and now - self._attempted_at < RETRY_INTERVAL:
            self._keep(lines)
            return
        self._attempted_at = now
        data = b"".join(lines)
        written = 0  # bytes of ``data`` in the file (a line cut short: up to its start)
        cut = False
        try:
            fd = self._current_fd()
            while written < len(data):
                lead = self._lead(fd) if self._check_end else b""  # b"\n": after part of a line
                out = data[written:] if written else data
                count = os.write(fd, lead + out if lead else out)
                if count <= 0:
                    raise OSError(0, "the file accepted no bytes")
                if self._check_end:  # the lead (one byte) went out
                    self._ended(found=bool(lead))
                written += count - len(lead)
                if written < len(data) and self._regular:
                    start = _line_start(lines, written)
                    if start < written:  # cut short mid-line: never its rest, the whole line
                        if cut:  # twice in one write: wait for the next attempt
                            raise OSError(0, "the file took only part of each write")
                        cut = True
                        self._cut_line()
                        written = start
        except OSError as exc:
            kept, cut_here = _unwritten(lines, written)  # cut_here: only a FIFO or a device
            self._keep(kept)
            self._check_end = True  # it may end in part of a line: this one's, or another's
            if cut_here:
                self._cut_line()
            self._failed(describe(exc), cut=cut or cut_here)
            return
        if self._failing:
            self._failing = False
            log.warning(
                "log events: writing to %s again (%d failed writes, %d lines dropped, %d partial "
                "lines so far)",
                self.path,
                self._failures,
                self.dropped,
                self._partial_lines,
            )

    def _lead(self, fd: int) -> bytes:
        """``b"\\n"`` when the file ends in part of a line, else ``b""``. A file this process may
        only write to cannot be read: then only a line this sink cut is assumed there."""
        ends = ends_line(fd)
        if ends is None:
            ends = not self._cut
        return b"" if ends else b"\n"

    def _cut_line(self) -> None:
        """A write went out only in part, ending mid-line: that part stays in the file as a line
        of its own (counted here, reported with the write's error); the next write reads the
        file's end first."""
        self._partial_lines += 1
        self._cut = True
        self._check_end = True

    def _ended(self, *, found: bool) -> None:
        """The file's end was read and, when ``found`` in part of a line, that line now ended
        with ``b"\\n"``: reported and counted here unless it is this sink's own cut line
        (counted when cut)."""
        if found and not self._cut:
            self._partial_lines += 1
            if self._partials_report.due():
                log.error(
                    "log events: %s ended in part of a line (a write cut short, by another "
                    "process or an earlier run): the next line starts on a new line, and that "
                    "part stays as a line that does not parse (%d such lines so far)",
                    self.path,
                    self._partial_lines,
                )
        self._cut = False
        self._check_end = False

    def _current_fd(self) -> int:
        """The fd to write to, reopened when the path was moved, deleted or replaced.

        One ``stat`` of the path per write: the open file's identity never changes, so it is
        read once when opened rather than ``fstat`` each time."""
        if self._fd is not None and not self._names_fd():
            fd, self._fd = self._fd, None
            os.close(fd)
        if self._fd is None:
            fd = open_for_append(self.path)
            opened = os.fstat(fd)
            self._fd_id = _identity(opened)
            self._regular = stat.S_ISREG(opened.st_mode)
            self._fd = fd
            self._check_end = True  # another file: it may end in part of a line
            self._cut = False  # a line this sink cut is in the file it left
        return self._fd

    def _names_fd(self) -> bool:
        """Whether the path still names the open file (false once moved or deleted)."""
        try:
            return _identity(os.stat(self._path_str)) == self._fd_id
        except FileNotFoundError:
            return False

    def _keep(self, lines: list[bytes]) -> None:
        """Keep ``lines`` for the next write, dropping (and counting) the oldest past the bound."""
        excess = len(lines) - self._max_pending
        if excess > 0:
            self._dropped += excess
            lines = lines[excess:]
            if self._drops_report.due():
                log.error(
                    "log events for %s dropped: %d lines already wait for the file to be "
                    "writable (%d dropped so far; last error: %s)",
                    self.path,
                    self._max_pending,
                    self.dropped,
                    self._last_error,
                )
        self._retry = lines

    def _failed(self, error: str, *, cut: bool) -> None:
        """Count a failed write and report it: the first one, then at most every interval; a
        write that ``cut`` a line (part of it went out) is reported the same way on its own
        interval, so the first one is never silent."""
        self._failures += 1
        self._failing = True
        self._last_error = f"{self.path}: {error}"
        self._last_reason = error
        due = self._failures_report.due()
        if cut:
            due = self._partials_report.due() or due
        if not due:
            return
        cut_short = (
            ". The write was cut short: part of a line is in the file and stays there as a "
            f"line that does not parse ({self._partial_lines} such lines so far); the whole "
            "line is written again, on a line of its own"
            if cut
            else ""
        )
        log.error(
            "log events cannot be written to %s: %s (%d failed writes, %d lines waiting, "
            "%d dropped); they are kept and retried%s",
            self.path,
            error,
            self._failures,
            len(self._retry),
            self.dropped,
            cut_short,
        )

    def _retry_at_close(self) -> None:
        """At close, after the last write: the kept lines the file still refuses are tried again
        every ``CLOSE_RETRY_INTERVAL`` for ``close_retry`` seconds at most (room freed, a folder
        moved off the path): a shutdown waits that long, never longer."""
        deadline = time.monotonic() + self._close_retry
        while self._retry:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(CLOSE_RETRY_INTERVAL, left))
            try:
                with self._write_lock:
                    self._write([], force=True)
            except Exception:  # a bug here must not keep the lines from stderr
                log.exception("log events: the writer for %s failed", self.path)
                return

    def _give_up(self) -> None:
        """At close, once the retries are over: the lines the file still refuses are written
        whole to stderr, after one line naming the file, the count and the error, in one write
        (nothing of this process lands between them unless stderr takes it in parts): the
        journal keeps them for an operator to append to the file. They are what the file would
        have held (scrubbed of codes). Only those stderr refuses too are dropped and counted."""
        if not self._retry:
            return
        lines, self._retry = self._retry, []
        reason = (self._last_reason or "an unknown error").encode("utf-8", "backslashreplace")
        header = (
            b"phone-actions: %d log lines for %s could not be written (%s); they follow, one "
            b"JSON line each, to be appended to that file\n"
        ) % (len(lines), os.fsencode(self.path), reason)
        data = memoryview(header + b"".join(lines))
        sent = 0  # bytes of ``data`` stderr took
        error = None
        with contextlib.suppress(Exception):  # what Python buffered for stderr goes first
            sys.stderr.flush()
        try:
            while sent < len(data):
                count = os.write(_STDERR, data[sent:])
                if count <= 0:
                    raise OSError(0, "stderr accepted no bytes")
                sent += count
        except OSError as exc:
            error = describe(exc)
        lost, _ = _unwritten(lines, max(sent - len(header), 0))
        self._written_to_stderr += len(lines) - len(lost)
        if lost:
            self._dropped += len(lost)
            log.error(
                "log events: %d lines for %s dropped at close: the file refused them (%s), and "
                "so did stderr (%s)",
                len(lost),
                self.path,
                self._last_reason,
                error,
            )

    def _complete(self, batch: list[_Item]) -> None:
        """Wake every caller of ``batch``: one call per event loop, however many callers."""
        futures: dict[LoopInbox, list[asyncio.Future[None]]] = {}
        for _, waiter in batch:
            if isinstance(waiter, tuple):
                futures.setdefault(waiter[0], []).extend(waiter[1:])
            elif waiter is not _WAKE:
                waiter.release()
        for inbox, waiting in futures.items():
            inbox.post(_resolve, waiting)


class _Every:
    """Says yes the first time, then at most once per ``interval`` seconds: one error record
    per incident and a reminder while it lasts, not one per event."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._last: float | None = None

    def due(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < self._interval:
            return False
        self._last = now
        return True


def _encode(request: PhoneMessageRequest, report: DeliveryReport, since: int = 0) -> list[bytes]:
    """The report's lines; an event that cannot be encoded is logged, never raised."""
    try:
        return json_lines(request, report, since)
    except Exception:
        log.exception("log events for delivery %s could not be encoded", report.id)
        return []


def _identity(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


def _line_start(lines: list[bytes], offset: int) -> int:
    """Where the line holding byte ``offset`` of ``b"".join(lines)`` starts."""
    start = 0
    for line in lines:
        if offset < start + len(line):
            return start
        start += len(line)
    return start


def _unwritten(lines: list[bytes], written: int) -> tuple[list[bytes], bool]:
    """The lines left to write after ``written`` bytes of ``lines`` went out (a partial write),
    and whether that cut one of them. A cut line is left whole: its rest, appended later, would
    follow whatever is at the file's end by then (another process's line, a new file's start)."""
    for index, line in enumerate(lines):
        if written < len(line):
            return lines[index:], written > 0
        written -= len(line)
    return [], False


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():  # a cancelled caller's future
            future.set_result(None)


@atexit.register
def _close_open_sinks() -> None:
    """Write what is pending at interpreter exit (the writer thread is a daemon)."""
    for sink in list(_open_sinks):
        sink.close()
