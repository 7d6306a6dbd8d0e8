"""A worker's OS isolation (docs/sandbox.md): fds, environment, rlimits, uid, no_new_privs, seccomp.

Two steps run in the worker: :func:`apply_spawn_limits` right after the fork (fds, environment,
rlimits), and :func:`apply_bind_limits` when the supervisor binds it to its tenant, before any
tenant code (the tenant's uid, ``no_new_privs``, seccomp). Namespaces and cgroups are in
:mod:`.namespaces` and :mod:`.cgroups`. The seccomp filter is
built once, in the zygote, with pyseccomp, and exported as a BPF program there; each child
installs that program with one ``prctl(PR_SET_SECCOMP)`` (libseccomp's own ``load()``
regenerates the BPF every time, ~0.7 ms per spawn). Loading must happen in the child: a
filtered zygote could no longer fork.

A worker started as root drops to its tenant's uid (or ``nobody``, 65534) before tenant code
runs: as root it could raise its own hard limits and, with read-only ``openat`` still allowed
by the filter, read every file it can see. The price is that a worker can no longer import
modules (its root is empty), so the zygote preloads everything.

RLIMIT_CPU counts a process's whole life, while a worker is persistent, so the per-invocation
budget is a *soft* limit moved forward before each invocation (:func:`start_invocation`) under
a fixed hard limit that a worker without privileges cannot raise; a worker whose remaining
hard budget is too small for another invocation asks to be retired.
"""

from __future__ import annotations

import ctypes
import errno
import math
import os
import resource
import signal
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "SECCOMP_ALLOWED",
    "UNPRIVILEGED_ID",
    "SeccompProgram",
    "WorkerLimits",
    "apply_bind_limits",
    "apply_spawn_limits",
    "build_seccomp_filter",
    "close_fds",
    "cpu_budget_left",
    "seccomp_status",
    "set_parent_death_signal",
    "start_invocation",
]

_ALLOWLIST: Final = """
    read write readv writev pread64 pwrite64 close fstat newfstatat statx lseek mmap munmap
    mprotect mremap brk madvise rt_sigaction rt_sigprocmask rt_sigreturn sigaltstack futex
    getrandom clock_gettime clock_getres gettimeofday exit exit_group getpid gettid getuid
    geteuid getgid getegid sendto recvfrom sendmsg recvmsg poll ppoll select pselect6 ioctl
    fcntl getcwd readlink sched_yield sched_getaffinity getrusage times uname
    set_robust_list rseq lstat stat access getdents64 dup dup3 pipe2 epoll_wait
    membarrier"""
SECCOMP_ALLOWED: Final = tuple(_ALLOWLIST.split())
"""The allowlist docs/sandbox.md lists, minus ``prlimit64`` (allowed for the worker itself only)."""

_WRITE_FLAGS: Final = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_CLONE_THREAD: Final = 0x00010000
_PR_SET_PDEATHSIG: Final = 1
_PR_SET_DUMPABLE: Final = 4
_PR_GET_SECCOMP: Final = 21
_PR_SET_SECCOMP: Final = 22
_SECCOMP_MODE_FILTER: Final = 2
_PR_SET_NO_NEW_PRIVS: Final = 38
UNPRIVILEGED_ID: Final = 65534
"""``nobody``/``nogroup``: a root worker without a tenant uid drops to it."""
NOFILE: Final = 16


@dataclass(frozen=True)
class WorkerLimits:
    """What is fixed when a worker is spawned; per-invocation limits may only be lower."""

    memory_bytes: int
    cpu_seconds: int
    cpu_lifetime_seconds: int = 0

    @property
    def cpu_hard(self) -> int:
        """Hard RLIMIT_CPU: a lifetime backstop (SIGKILL), well above one invocation."""
        return self.cpu_lifetime_seconds or self.cpu_seconds + 60


_libc: Final = ctypes.CDLL(None, use_errno=True)  # loaded in the zygote, before any filter
_libc_prctl: Final = _libc.prctl
# Typed once, here: a call in a fresh worker then converts plain ints without building ctypes
# objects or resolving the symbol, which would dirty pages it shares with the zygote.
_libc_prctl.argtypes = (ctypes.c_int, *(ctypes.c_ulong,) * 4)
_libc_prctl.restype = ctypes.c_int


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


class SeccompProgram:
    """A compiled BPF filter, ready to be installed by a forked child with one syscall."""

    def __init__(self, bpf: bytes) -> None:
        if not bpf or len(bpf) % 8:
            raise ValueError("not a BPF program (8-byte instructions)")
        self._buffer = ctypes.create_string_buffer(bpf, len(bpf))
        self._fprog = _SockFprog(len(bpf) // 8, ctypes.addressof(self._buffer))
        self._address = ctypes.addressof(self._fprog)
        self.instructions = len(bpf) // 8

    def load(self) -> None:
        """Install the filter on the calling process (needs no_new_privs first)."""
        _prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, self._address)


def _prctl(option: int, arg: int, arg3: int = 0) -> int:
    result: int = _libc_prctl(option, arg, arg3, 0, 0)
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl({option}): {os.strerror(code)}")
    return result


_SIGKILL: Final = int(signal.SIGKILL)


def set_parent_death_signal() -> None:
    """SIGKILL this process when its parent (the zygote) dies."""
    _prctl(_PR_SET_PDEATHSIG, _SIGKILL)


def build_seccomp_filter() -> tuple[SeccompProgram | None, str]:
    """Build the worker filter once: ``(program, "")`` or ``(None, why it is unavailable)``.

    Default action ERRNO(EPERM) so that a refused call is an ``OSError`` the tenant sees,
    rather than a dead worker that looks like a crash.
    """
    try:
        import pyseccomp as sc
    except (ImportError, RuntimeError, OSError) as exc:  # RuntimeError: no libseccomp
        return None, f"pyseccomp/libseccomp unavailable: {exc}"
    try:
        filt = sc.SyscallFilter(sc.ERRNO(errno.EPERM))
        for name in SECCOMP_ALLOWED:
            filt.add_rule(sc.ALLOW, name)
        # open only for reading: Python must still be able to import lazily.
        filt.add_rule(sc.ALLOW, "openat", sc.Arg(2, sc.MASKED_EQ, _WRITE_FLAGS, 0))
        # threads are harmless; fork (clone without CLONE_THREAD) is not.
        filt.add_rule(sc.ALLOW, "clone", sc.Arg(0, sc.MASKED_EQ, _CLONE_THREAD, _CLONE_THREAD))
        # clone3 passes flags in memory that BPF cannot read: ENOSYS makes glibc use clone.
        filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        # setrlimit on itself only (per-invocation CPU budget), never on another process.
        filt.add_rule(sc.ALLOW, "prlimit64", sc.Arg(0, sc.EQ, 0))
        return SeccompProgram(_export_bpf(filt)), ""
    except (OSError, ValueError) as exc:
        return None, f"building the seccomp filter failed: {exc}"


def _export_bpf(filt: Any) -> bytes:
    with os.fdopen(os.memfd_create("seccomp-bpf"), "w+b") as buffer:
        filt.export_bpf(buffer)
        buffer.seek(0)
        return buffer.read()


def seccomp_status() -> tuple[bool, str]:
    """Whether workers can be seccomp-filtered here, and a sentence saying why (not)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            if not any(line.startswith("Seccomp:") for line in status):
                return False, "kernel without seccomp support (no Seccomp: in /proc/self/status)"
        _prctl(_PR_GET_SECCOMP, 0)
        with open("/proc/sys/kernel/seccomp/actions_avail", encoding="ascii") as actions:
            if "errno" not in actions.read().split():
                return False, "kernel seccomp lacks the ERRNO action"
    except OSError as exc:
        return False, f"cannot query seccomp: {exc}"
    filt, why = build_seccomp_filter()
    if filt is None:
        return False, why
    return True, "seccomp filter available (default ERRNO(EPERM), syscall allowlist)"


def close_fds(keep: int) -> None:
    """Close every fd but ``keep``; 0, 1 and 2 point to ``/dev/null`` (opened here, so this
    runs before the worker leaves the host's mount namespace)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != keep and fd != devnull:
            os.dup2(devnull, fd)
    if devnull > 2 and devnull != keep:
        os.close(devnull)
    os.closerange(3, keep)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    os.closerange(keep + 1, min(max(soft, 1 << 16), 1 << 20))  # close_range(2): one syscall


def _drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def apply_spawn_limits(limits: WorkerLimits, *, workdir: str) -> None:
    """At spawn (still privileged, fds closed): empty environment, rlimits, not dumpable.

    Raises ``OSError`` on failure: the caller must then exit, not serve half-isolated.
    """
    os.environ.clear()
    os.chdir(workdir)
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_hard))
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _prctl(_PR_SET_DUMPABLE, 0)


def apply_bind_limits(uid: int | None, seccomp: SeccompProgram | None) -> bool:
    """When the worker is bound to its tenant, before any tenant code: drop to ``uid`` (the
    tenant's; ``nobody`` when ``None``) if root, ``RLIMIT_NPROC`` 0, ``no_new_privs``, then the
    seccomp filter. Returns whether seccomp is active; raises ``OSError`` on any failure.

    Why not at spawn: a spare worker is forked before anyone knows its tenant, and the uid can
    only be set while the worker is still root, that is before the filter (which refuses
    ``setresuid``) is loaded.
    """
    if os.geteuid() == 0:
        _drop_privileges(UNPRIVILEGED_ID if uid is None else uid)
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    _prctl(_PR_SET_DUMPABLE, 0)  # setresuid resets it
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    if seccomp is None:
        return False
    seccomp.load()
    return True


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start_invocation(cpu_seconds: int, memory_bytes: int) -> None:
    """Give the next invocation ``cpu_seconds`` of CPU from now and at most ``memory_bytes``.

    Soft limits only (a worker cannot raise its hard limits): SIGXCPU at the soft CPU limit
    ends the process, which the supervisor reports as ``timeout``.
    """
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(_cpu_used() + cpu_seconds)
    if cpu_hard != resource.RLIM_INFINITY:
        soft = min(soft, cpu_hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, cpu_hard))
    _, as_hard = resource.getrlimit(resource.RLIMIT_AS)
    if as_hard != resource.RLIM_INFINITY:
        memory_bytes = min(memory_bytes, as_hard)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, as_hard))


def cpu_budget_left() -> float:
    """Seconds of CPU left under the hard limit (the worker retires when one budget won't fit)."""
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    if cpu_hard == resource.RLIM_INFINITY:
        return math.inf
    return cpu_hard - _cpu_used()
