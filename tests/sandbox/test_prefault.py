"""The zygote's page probe (``runtime.sandbox.guest.prefault``): it finds the pages a new worker
writes early, and each worker copies them in one call. It only makes cold starts cheaper; these
tests make sure it does not silently stop working (it falls back to plain faults)."""

from __future__ import annotations

import ctypes
import os

import pytest

from runtime.sandbox.guest import prefault
from runtime.sandbox.guest.oslimits import WorkerLimits
from runtime.sandbox.host.zygote_client import ZygoteClient

SUPPORTED = prefault._supported()
needs_support = pytest.mark.skipif(
    not SUPPORTED, reason="process_madvise(MADV_POPULATE_WRITE) on oneself unavailable here"
)
PAGE = os.sysconf("SC_PAGE_SIZE")
BUFFER = (ctypes.c_char * (64 * PAGE))()  # shared with the probe and the children below
START = (ctypes.addressof(BUFFER) + PAGE - 1) // PAGE * PAGE
PAGES = 48


def _write_pages() -> None:
    for index in range(PAGES):
        ctypes.memset(START + index * PAGE, 1, 1)


def test_ranges_merge_adjacent_pages() -> None:
    pages = [3 * PAGE, PAGE, 2 * PAGE, 7 * PAGE]
    assert prefault._ranges(pages) == [(PAGE, 4 * PAGE), (7 * PAGE, 8 * PAGE)]


@needs_support
def test_the_probe_finds_the_pages_its_workload_wrote_and_a_child_copies_them() -> None:
    pages = prefault.learn(_write_pages, os.fork)
    assert pages is not None
    assert pages.pages >= PAGES
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write_end, str(pages.populate()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with open(read_end, "rb") as reader:
        done = int(reader.read())
    os.waitpid(pid, 0)
    assert done >= PAGES * PAGE


def test_a_failed_probe_gives_no_page_set() -> None:
    def broken() -> None:
        raise RuntimeError("probe failed")

    assert prefault.learn(broken, os.fork) is None


@needs_support
@pytest.mark.skipif(os.geteuid() != 0, reason="the zygote's probe runs as root in production")
async def test_the_zygote_learns_pages_and_its_workers_start() -> None:
    client = ZygoteClient(lambda worker: None)
    await client.start(probes=(), require_seccomp=False)
    try:
        assert client.info["prefault_pages"] > 100  # the smallest handler's first run
        worker = await client.spawn(WorkerLimits(memory_bytes=256 << 20, cpu_seconds=5))
        worker.kill()
    finally:
        await client.aclose()
