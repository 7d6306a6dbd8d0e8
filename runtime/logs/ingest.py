"""Copies the JSON Lines log into the database (:class:`LogIngester`): the stored log follows
the file, so the file stays the one guarantee.

A report returns once its lines were handed to the OS (:mod:`runtime.logs.sink`); it does not
wait for the database. This task reads the file from where it stopped (``log_ingest`` keeps
the offset of each node's file with its device and inode) and stores the new lines, in chunks,
on the store executor: woken by each delivery, and every ``job_poll_interval`` for the events
others write (the Verify API's). A database that is down or slow only delays the copy: the
offset does not move until a chunk is stored, so the next pass stores it again (a line already
stored is skipped by its ``log_id``). A rotated file (moved away, a new one at the path) is
read to its end through the open descriptor, then the new one from its start; a file
truncated in place (``copytruncate``) is read from its start. A file rotated while the process
was away is found beside the path by its device and inode and read to its end first; when the
path turned more than once while the copy was behind, the rotated files written since are read
in order before the path's. Compressed rotated files are not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from stat import S_ISREG
from typing import Any

from runtime.logs.stored import LogRepository, row_of
from runtime.store.executor import StoreExecutor

__all__ = ["CHUNK_BYTES", "LogIngester"]

log = logging.getLogger("runtime.logs")

CHUNK_BYTES = 256 * 1024  # read and stored in one transaction (about 400 delivery events)
_STEPS_PER_PASS = 16  # chunks before the loop lets others have the executor
_COMPLAIN_EVERY = 60.0
_PURGE_EVERY = 600.0
_MAX_SIBLINGS = 1000  # files beside the log looked at for a rotated one (bounded work)
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".z")


class LogIngester:
    """Tails one log file into ``log_events``; one per process (pipeline)."""

    def __init__(
        self,
        path: Path,
        repository: Callable[[], Awaitable[LogRepository]],
        executor: StoreExecutor,
        *,
        timeout: float,
        poll_interval: float,
        retention_days: float,
        every_pass: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.path = path
        self.source = f"{socket.gethostname()}:{path.resolve()}"[:512]
        self._repository = repository
        self._executor = executor
        self._timeout = timeout
        self._poll = poll_interval
        self._retention = retention_days
        self._every_pass = every_pass
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._fd: int | None = None
        self._file_id = ""
        self._offset = -1  # unknown until the stored position was read
        self._finished: set[str] = set()  # files (device:inode) read to their end, rotated away
        self._complained = -_COMPLAIN_EVERY
        self._purged = time.monotonic() - _PURGE_EVERY + 30.0  # first purge 30 s after start
        self.stored = 0  # rows this process stored (tests, metrics)

    def wake(self) -> None:
        """New lines were written: copy them now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        """Start the copying task in the running loop (no-op while it runs)."""
        if self._stopping or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="log-ingest")

    async def aclose(self) -> None:
        """One last pass (the events of the last reports), then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            try:
                await self.catch_up()
            except Exception as exc:  # the next start copies them from the file
                self._complain(exc)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    async def catch_up(self) -> int:
        """Store every complete line written so far; the rows that were new."""
        repository = await self._repository()
        new = 0
        while True:
            count, more = await self._executor.run(self._step, repository, timeout=self._timeout)
            new += count
            if not more:
                return new

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                repository = await self._repository()
                for _ in range(_STEPS_PER_PASS):
                    _, more = await self._executor.run(
                        self._step, repository, timeout=self._timeout
                    )
                    if not more:
                        break
                else:
                    self._wake.set()  # more to read: come back after the others had a turn
                await self._purge(repository)
            except Exception as exc:  # the database is down: the file keeps the events
                self._complain(exc)
            if self._every_pass is not None:
                try:
                    await self._every_pass()
                except Exception as exc:
                    self._complain(exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()

    def _complain(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._complained >= _COMPLAIN_EVERY:
            self._complained = now
            log.warning(
                "log events not copied to the database yet (the file %s has them; retried): %s: %s",
                self.path,
                type(exc).__name__,
                exc,
            )

    async def _purge(self, repository: LogRepository) -> None:
        now = time.monotonic()
        if now - self._purged < _PURGE_EVERY:
            return
        self._purged = now
        await self._executor.run(repository.purge, self._retention, timeout=self._timeout * 5)

    # -- on the store executor ------------------------------------------------------------------

    def _step(self, repository: LogRepository) -> tuple[int, bool]:
        """Store the next chunk of complete lines; (rows new, whether more may follow)."""
        fd = self._current(repository)
        if fd is None:
            return 0, False
        data = os.pread(fd, CHUNK_BYTES, self._offset)
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) < CHUNK_BYTES:
                return 0, self._next_file()  # a line being written, or rotated
            end = len(data) - 1  # one line longer than a chunk: not an event we can store
            log.error("log file %s: a line over %d bytes skipped", self.path, CHUNK_BYTES)
            rows: list[dict[str, Any]] = []
        else:
            cutoff = datetime.now(UTC) - timedelta(days=self._retention)
            rows = []
            for line in data[: end + 1].splitlines():
                row = row_of(line) if line.strip() else None
                if row is not None and row["date"] >= cutoff:
                    rows.append(row)
        offset = self._offset + end + 1
        new = repository.store(self.source, self._file_id, offset, rows)
        self._offset = offset
        self.stored += new
        return new, True

    def _current(self, repository: LogRepository) -> int | None:
        """The descriptor to read, opened (at the stored offset) when need be."""
        if self._fd is None:
            position = repository.position(self.source)
            # rotated while this process was away: finish the stored file first, if it lies
            # beside the path (then the path's file follows, from its start)
            fd = None
            if position is not None and position[0] not in self._finished:
                fd = self._rotated_away(position[0])
            if fd is None:
                try:
                    fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    return None
            self._fd = fd
            self._file_id = _file_id(os.fstat(fd))
            same = position is not None and position[0] == self._file_id
            self._offset = position[1] if same and position is not None else 0
        if os.fstat(self._fd).st_size < self._offset:  # truncated in place
            self._offset = 0
        return self._fd

    def _rotated_away(self, file_id: str) -> int | None:
        """An fd on the file ``file_id`` names when it is no longer at the path but beside it,
        renamed by a rotation: None when the path still names it, or it is gone."""
        try:
            named = os.stat(self.path)
        except OSError:
            return None
        if _file_id(named) == file_id:
            return None
        for sibling, stat in self._rotated_files():
            if _file_id(stat) == file_id:
                return _open_regular(sibling, file_id)
        return None

    def _rotated_files(self) -> list[tuple[Path, os.stat_result]]:
        """Regular files beside the path that a rotation renamed it to (``events.jsonl.1``,
        ``events.jsonl-20261207``; not compressed ones), at most :data:`_MAX_SIBLINGS` of
        them; never a folder, a FIFO or a device (opening a FIFO would wait for a writer)."""
        prefix = self.path.name
        found: list[tuple[Path, os.stat_result]] = []
        try:
            with os.scandir(self.path.parent) as entries:
                for entry in entries:
                    name = entry.name
                    if name == prefix or not name.startswith(prefix) or len(found) >= _MAX_SIBLINGS:
                        continue
                    if name[len(prefix)] not in ".-" or name.endswith(_COMPRESSED):
                        continue
                    with contextlib.suppress(OSError):
                        stat = entry.stat(follow_symlinks=False)
                        if S_ISREG(stat.st_mode):
                            found.append((Path(entry.path), stat))
        except OSError:
            return []
        return found

    def _next_file(self) -> bool:
        """At the end of the open file: move on to the file written after it (true when it
        did). That is the one at the path, unless the path was rotated again meanwhile (the
        copy fell behind): then first the rotated files written since, oldest first, found
        beside the path."""
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return False
        if self._fd is None or _file_id(named) == self._file_id:
            return False
        written_until = os.fstat(self._fd).st_mtime_ns
        os.close(self._fd)  # the old file was read to its end
        self._fd = None
        self._finished.add(self._file_id)  # never looked for beside the path again
        between = [
            (stat.st_mtime_ns, sibling, stat)
            for sibling, stat in self._rotated_files()
            if _file_id(stat) not in self._finished
            and _file_id(stat) != _file_id(named)
            and stat.st_mtime_ns >= written_until
        ]
        if between:
            _, sibling, stat = min(between, key=lambda entry: (entry[0], entry[1]))
            self._fd = _open_regular(sibling, _file_id(stat))
            if self._fd is not None:
                self._file_id, self._offset = _file_id(stat), 0
        return True


def _file_id(stat: os.stat_result) -> str:
    return f"{stat.st_dev}:{stat.st_ino}"


def _open_regular(path: Path, file_id: str) -> int | None:
    """``path`` opened for reading when it is still the regular file ``file_id`` (it may have
    been replaced since it was listed); never blocks on a FIFO put there meanwhile."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        stat = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    if not S_ISREG(stat.st_mode) or _file_id(stat) != file_id:
        os.close(fd)
        return None
    return fd
