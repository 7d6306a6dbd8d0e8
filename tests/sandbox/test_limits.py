"""OS isolation of a real worker (docs/sandbox.md, c), checked from inside it.

The ``probe_*`` functions below are trusted test code that the pool's test-only probe hook runs
inside a real worker, after the worker applied its limits and exactly where tenant code would
run. They report what the kernel allowed; the tests assert on it.
"""

from __future__ import annotations

import errno
import os
import resource
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runtime.sandbox.guest.oslimits import (
    NOFILE,
    UNPRIVILEGED_ID,
    build_seccomp_filter,
    seccomp_status,
)
from runtime.sandbox.host.context import InvocationContext
from runtime.sandbox.host.pool import SandboxPool
from runtime.sandbox.shared.contract import SandboxLimits

HERE = "tests.sandbox.test_limits"
SECCOMP, SECCOMP_WHY = seccomp_status()
needs_seccomp = pytest.mark.skipif(not SECCOMP, reason=f"seccomp unavailable: {SECCOMP_WHY}")


def _attempt(action: Any) -> str:
    try:
        action()
    except MemoryError:
        return "MemoryError"
    except OSError as exc:
        return f"refused:{errno.errorcode.get(exc.errno or 0, exc.errno)}"
    return "allowed"


def probe_socket() -> str:
    return _attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())


def probe_socketpair() -> str:
    return _attempt(socket.socketpair)


def probe_open_write(path: str) -> str:
    return _attempt(lambda: open(path, "w").close())


def probe_open_read(path: str) -> str:
    return _attempt(lambda: Path(path).read_bytes())


def probe_fork() -> str:
    def fork() -> None:
        if os.fork() == 0:  # must never happen; if it does, vanish at once
            os._exit(0)

    return _attempt(fork)


def probe_exec() -> str:
    return _attempt(lambda: os.execv("/bin/true", ["true"]))


def probe_kill(pid: int) -> str:
    return _attempt(lambda: os.kill(pid, 0))


def probe_allocate(size: int) -> str:
    return _attempt(lambda: bytearray(size))


def probe_state() -> dict[str, Any]:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    names = ("AS", "CPU", "NOFILE", "FSIZE", "CORE")
    return {
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
        "cwd_entries": os.listdir("."),
        "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
        "uid": os.getuid(),
        "rlimits": {n: list(resource.getrlimit(getattr(resource, f"RLIMIT_{n}"))) for n in names},
        "no_new_privs": status["NoNewPrivs"].strip(),
        "seccomp": status["Seccomp"].strip(),
    }


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    limits = SandboxLimits(memory_bytes=256 * 1024 * 1024, cpu_seconds=3)
    sandbox = SandboxPool(_NoServices(), limits=limits, spare_workers=0, probe_modules=(HERE,))
    await sandbox.start()
    yield sandbox
    await sandbox.aclose()


class _NoServices:
    async def handle(self, context: InvocationContext, op: str, params: dict[str, Any]) -> Any:
        raise AssertionError("probes make no api calls")


def test_seccomp_status_reports_this_machine() -> None:
    ok, detail = seccomp_status()
    assert isinstance(ok, bool)
    assert detail
    assert (build_seccomp_filter()[0] is not None) == ok


async def test_worker_starts_clean(pool: SandboxPool) -> None:
    state = await pool.probe("acme", f"{HERE}:probe_state")
    assert state["environ"] == {}
    assert state["cwd_entries"] in ([], ["proc"])  # an empty folder, or the empty root's /proc
    assert state["cwd"] != os.getcwd()
    # stdin/out/err on /dev/null, the RPC socket, and the fd listdir itself opened
    assert len(state["fds"]) <= 5, state["fds"]
    assert state["rlimits"]["AS"] == [256 * 1024 * 1024] * 2
    cpu_soft, cpu_hard = state["rlimits"]["CPU"]
    assert 3 <= cpu_soft <= 4 < cpu_hard
    assert state["rlimits"]["NOFILE"] == [NOFILE, NOFILE]
    assert state["rlimits"]["FSIZE"] == [0, 0]
    assert state["rlimits"]["CORE"] == [0, 0]
    assert state["no_new_privs"] == "1"
    if os.geteuid() == 0:  # the tenant's own uid (test_isolation.py), never root
        assert state["uid"] not in (0, UNPRIVILEGED_ID)
    if SECCOMP:
        assert state["seccomp"] == "2"  # filter mode


async def test_rlimit_as_turns_a_huge_allocation_into_memory_error(pool: SandboxPool) -> None:
    assert await pool.probe("acme", f"{HERE}:probe_allocate", 1 << 30) == "MemoryError"
    assert await pool.probe("acme", f"{HERE}:probe_allocate", 1 << 20) == "allowed"


@needs_seccomp
async def test_seccomp_refuses_network_fork_exec_and_writes(
    pool: SandboxPool, tmp_path: Path
) -> None:
    target = tmp_path / "written-by-worker"
    os.chmod(tmp_path, 0o777)  # so that only seccomp (not the unprivileged uid) can refuse it
    assert await pool.probe("acme", f"{HERE}:probe_socket") == "refused:EPERM"
    assert await pool.probe("acme", f"{HERE}:probe_socketpair") == "refused:EPERM"
    assert await pool.probe("acme", f"{HERE}:probe_open_write", str(target)) == "refused:EPERM"
    assert await pool.probe("acme", f"{HERE}:probe_fork") == "refused:EPERM"
    assert await pool.probe("acme", f"{HERE}:probe_exec") == "refused:EPERM"
    assert await pool.probe("acme", f"{HERE}:probe_kill", os.getpid()) == "refused:EPERM"
    assert not target.exists()
    # read-only opens stay allowed (lazy imports need them), as docs/sandbox.md says
    assert await pool.probe("acme", f"{HERE}:probe_open_read", "/proc/self/status") == "allowed"
    assert pool.stats()["seccomp"]["active"] is True


@needs_seccomp
async def test_require_seccomp_starts_where_seccomp_works() -> None:
    sandbox = SandboxPool(_NoServices(), require_seccomp=True, spare_workers=0)
    await sandbox.start()
    try:
        assert sandbox.stats()["seccomp"]["active"] is True
    finally:
        await sandbox.aclose()
