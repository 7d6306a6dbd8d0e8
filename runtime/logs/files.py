"""The log file itself: opened for appending, recognised after a rotation, checked by doctor.

Kept apart from the writer so that ``phone-actions doctor`` and the sink agree on what a usable
log path is, and so that every message about a bad path names the setting to change.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from runtime.errors import ConfigurationError

__all__ = [
    "LOW_SPACE_BYTES",
    "check_log_path",
    "describe",
    "ends_line",
    "is_same_file",
    "open_for_append",
    "open_sink_file",
    "space_warning",
]

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
_READABLE_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
_SETTINGS = "PHONE_ACTIONS_LOG_FILE (default: <data_dir>/events.jsonl, PHONE_ACTIONS_DATA_DIR)"
LOW_SPACE_BYTES = 100 * 1024 * 1024  # below this, or below 1% of the device, doctor warns
LOW_SPACE_RATIO = 0.01


def describe(exc: OSError) -> str:
    """``No space left on device (ENOSPC)``: the words and the name people search for."""
    name = errno.errorcode.get(exc.errno or 0)
    words = exc.strerror or str(exc)
    return f"{words} ({name})" if name else words


def open_for_append(path: Path) -> int:
    """An ``O_APPEND`` fd on ``path`` (folders created); ``OSError`` when that fails.

    ``O_APPEND`` makes every ``os.write`` land at the current end, so a file truncated in place
    (logrotate's ``copytruncate``) is written from its new start, without a hole. A regular
    file is opened for reading too, so that :func:`ends_line` can read its last byte; a file
    the process may only write to, and anything else (a FIFO, ``/dev/full``), write-only as
    before.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        regular = True  # O_CREAT makes one
    if regular:
        with contextlib.suppress(PermissionError):  # not readable: write-only (or that error)
            return os.open(path, _READABLE_FLAGS, 0o644)
    return os.open(path, _FLAGS, 0o644)


def ends_line(fd: int) -> bool | None:
    """Whether the file ``fd`` is open on ends a line: empty, not a regular file, or ``\\n``
    as its last byte. ``None`` when that cannot be read (a write-only fd).

    Two syscalls (``fstat``, ``pread``): for a writer that just (re)opened the file or had a
    write fail, never per write. A write cut short (a full disk) leaves part of a line at the
    end; whoever appends next must start with ``\\n``, or its own line is glued to that part.
    """
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
        return True
    try:
        last = os.pread(fd, 1, info.st_size - 1)
    except OSError as exc:
        if exc.errno == errno.EBADF:  # opened write-only
            return None
        raise
    return last in (b"\n", b"")  # b"": truncated meanwhile (copytruncate), empty again


def open_sink_file(path: Path) -> int:
    """:func:`open_for_append`, with a one-line :class:`ConfigurationError` naming the setting."""
    if path.is_dir():
        raise ConfigurationError(f"log file {path} is a folder; set {_SETTINGS} to a file")
    try:
        return open_for_append(path)
    except OSError as exc:
        raise ConfigurationError(
            f"log file {path} cannot be opened for appending: {describe(exc)}; check {_SETTINGS}"
        ) from None


def is_same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file ``fd`` is open on (false once moved or deleted)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def space_warning(free: int, total: int) -> str | None:
    """Why ``free`` bytes out of ``total`` is too little room for the log, if it is."""
    if free < LOW_SPACE_BYTES or free < total * LOW_SPACE_RATIO:
        return f"warning: only {free / 2**20:.0f} MiB free ({free / max(total, 1):.1%})"
    return None


def check_log_path(path: Path) -> tuple[bool, str]:
    """For doctor: whether a line can be appended at ``path``, and the detail to show.

    Creates the folder when it is missing (the sink would too); refuses a folder path; a device
    with less than 1% or 100 MB free is a warning in the detail, not a failure.
    """
    if path.is_dir():
        return False, f"{path} is a folder; set {_SETTINGS} to a file"
    try:
        os.close(open_for_append(path))
        stats = os.statvfs(path.parent)
    except OSError as exc:
        return False, f"{path}: {describe(exc)}"
    free, total = stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize
    warning = space_warning(free, total)
    return True, f"{path.resolve()}" + (f"; {warning}" if warning else "")
