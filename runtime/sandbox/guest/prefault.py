"""Copy, in one system call, the zygote's pages that a new worker is about to write anyway.

Why: a worker shares its memory with the zygote, copy-on-write. Its first steps (isolation,
the ``ready`` frame, its first compile and run) write to about 600 of those pages, and each
first write is a page fault that copies one page (~1.6 µs each on a VM). The zygote learns
once which pages these are: a probe child runs the same trusted steps on a minimal handler and
reports which pages became its own (``/proc/self/pagemap``, "exclusively mapped"). Each worker
then copies them, once it is in its own cgroup (so they are charged to it), with one
``process_madvise(MADV_POPULATE_WRITE)``, about 40 % cheaper per page than the faults. Pages
are copied earlier, nothing else: what a worker can see, write or share is unchanged. Pages a
worker turns out not to need cost it a copy (~1 µs and 4 KiB each), which is why the probe
runs the smallest handler, not a realistic one.

Needs Linux 6.13 or later (``process_madvise`` with any advice on oneself) and
``CAP_SYS_NICE`` (root); elsewhere :func:`learn` returns ``None`` and workers fault as before.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Callable
from typing import Final

__all__ = ["PageSet", "learn"]

_SYS_PROCESS_MADVISE: Final = 440  # x86_64 and aarch64 (the generic table)
_MADV_POPULATE_WRITE: Final = 23
_IOV_MAX: Final = 1024
_PAGE: Final = os.sysconf("SC_PAGE_SIZE")
_PRESENT: Final = 1 << 63
_EXCLUSIVE: Final = 1 << 56
_ENTRY: Final = struct.Struct("=Q")

_process_madvise: Final = ctypes.CDLL(None, use_errno=True).syscall  # this CDLL's own pointer
_process_madvise.argtypes = (
    ctypes.c_long,
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_uint,
)
_process_madvise.restype = ctypes.c_long


class _Iovec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


_IOVEC_SIZE: Final = ctypes.sizeof(_Iovec)


class PageSet:
    """Page ranges of the zygote that its workers write early; built once, in the zygote."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        ranges = ranges[:_IOV_MAX]
        self._iov = (_Iovec * len(ranges))(*(_Iovec(start, end - start) for start, end in ranges))
        self._address = ctypes.addressof(self._iov)
        self._lengths = [end - start for start, end in ranges]
        self.count = len(ranges)
        self.pages = sum(self._lengths) // _PAGE

    def populate(self) -> int:
        """In a new worker: copy the pages now; returns the bytes done (errors are ignored: a
        page not copied here is copied by its first write, as without this)."""
        try:
            pidfd = os.pidfd_open(os.getpid())
        except OSError:
            return 0
        done = 0
        try:
            first = 0
            for _ in range(8):  # a range the zygote unmapped since stops a call: skip it
                if first >= self.count:
                    break
                result: int = _process_madvise(
                    _SYS_PROCESS_MADVISE,
                    pidfd,
                    self._address + first * _IOVEC_SIZE,
                    self.count - first,
                    _MADV_POPULATE_WRITE,
                    0,
                )
                if result < 0:
                    break
                done += result
                while first < self.count and result >= self._lengths[first]:
                    result -= self._lengths[first]
                    first += 1
                first += 1  # the range that stopped the call
        finally:
            os.close(pidfd)
        return done


def _writable_private() -> list[tuple[int, int]]:
    regions = []
    with open("/proc/self/maps", "rb") as maps:
        for line in maps:
            fields = line.split()
            if fields[1][1:2] == b"w" and fields[1][3:4] == b"p":
                start, end = fields[0].split(b"-")
                regions.append((int(start, 16), int(end, 16)))
    return regions


def _own_pages(pagemap_fd: int, regions: list[tuple[int, int]]) -> list[int]:
    pages = []
    for start, end in regions:
        data = os.pread(pagemap_fd, (end - start) // _PAGE * 8, start // _PAGE * 8)
        for index, (entry,) in enumerate(_ENTRY.iter_unpack(data)):
            if entry & _PRESENT and entry & _EXCLUSIVE:
                pages.append(start + index * _PAGE)
    return pages


def _ranges(pages: list[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for page in sorted(pages):
        if ranges and ranges[-1][1] == page:
            ranges[-1] = (ranges[-1][0], page + _PAGE)
        else:
            ranges.append((page, page + _PAGE))
    return ranges


def _supported() -> bool:
    """Whether this kernel lets us populate our own pages with process_madvise."""
    scratch = (ctypes.c_char * (2 * _PAGE))()
    page = (ctypes.addressof(scratch) + _PAGE - 1) // _PAGE * _PAGE
    return PageSet([(page, page + _PAGE)]).populate() == _PAGE


def learn(workload: Callable[[], None], fork: Callable[[], int]) -> PageSet | None:
    """In the zygote, before it serves: fork a probe child that runs ``workload`` (trusted code
    only) and reports the pages it wrote; ``None`` if unsupported or the probe failed."""
    if not _supported():
        return None
    regions = _writable_private()
    read_end, write_end = os.pipe()
    pid = fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)
            pagemap = os.open("/proc/self/pagemap", os.O_RDONLY)
            workload()
            data = b"".join(_ENTRY.pack(page) for page in _own_pages(pagemap, regions))
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view) :]
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with open(read_end, "rb") as reader:
        data = reader.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        return None
    pages = [page for (page,) in _ENTRY.iter_unpack(data)]
    return PageSet(_ranges(pages)) if pages else None
