"""The warm zygote: a clean, trusted process that forks the workers.

Why a zygote: a worker must start fast (a cold ``python`` with RestrictedPython and pydantic
takes ~300 ms) and cheap (copy-on-write pages shared with the zygote), and it must inherit
nothing from the API process. The zygote is therefore a *clean* ``python -m
runtime.sandbox.guest.zygote`` subprocess (not a fork of the API process, whose sockets, DB
connections and threads it would inherit), started with only its control socket, an
environment holding nothing but ``PYTHONPATH``, and its own session. It imports everything a
worker needs, builds the seccomp filter once, ``gc.freeze()``-s, and then forks one worker per
``spawn`` request. Each worker gets a fresh stream socketpair; the supervisor's end and a pidfd
of the child go back over the SOCK_SEQPACKET control socket with SCM_RIGHTS. The pidfd lets
the supervisor SIGKILL exactly that process even though it is the zygote's child (no pid-reuse
race); the zygote reaps children and reports each exit status. The zygote never runs tenant
code and exits (killing its workers) when the control socket closes. The supervisor's client
is :class:`runtime.sandbox.host.zygote_client.ZygoteClient`.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal.signal without the enum wrapping
import contextlib
import ctypes
import gc
import importlib
import os
import select
import signal
import socket
import struct
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Final

import orjson

from runtime.sandbox.guest import cgroups, namespaces, oslimits, prefault
from runtime.sandbox.shared.oslayers import OsIsolation

__all__ = ["PRELOAD", "forget_zygote_signals", "fork", "main"]

PRELOAD: Final = (
    "orjson",
    "pydantic",
    "RestrictedPython",
    "RestrictedPython.Guards",
    "RestrictedPython.Eval",
    "RestrictedPython.PrintCollector",
    "runtime.sandbox.shared.contract",
    "runtime.sandbox.guest.worker_loop",
    "json",
    "re",
    "math",
    "datetime",
    "hashlib",
    "hmac",
    "base64",
    "urllib.parse",
    "random",
    "time",
    "ast",
    "traceback",
    "linecache",
    "tokenize",
    "unicodedata",
    "secrets",
    "string",
    "_strptime",
    "encodings.idna",
    "encodings.punycode",  # the masker spells secrets as host names (IDNA 2008)
)
"""Imported before forking so workers share the pages and never import after seccomp."""
_CTRL_MAX: Final = 65536
_TWO_FDS: Final = struct.Struct("2i")  # SCM_RIGHTS data: the worker's socket and its pidfd

_libc_fork: Final = ctypes.CDLL(None, use_errno=True).fork
_libc_fork.argtypes = ()
_libc_fork.restype = ctypes.c_int
_native_threads = 0  # threads of this process at its first fork (0: not counted yet)
_SIGCHLD: Final = int(signal.SIGCHLD)
_SIG_DFL: Final = int(signal.SIG_DFL)


def fork() -> int:
    """``os.fork()`` without Python's at-fork hooks, while this process has only one thread.

    Why: ``os.fork()`` runs the hooks that ``random`` (a reseed), ``threading`` (rebuilds its
    locks and thread table) and ``logging`` registered, in Python, in every child: about 200
    copy-on-write faults of pages shared with the zygote (0.4 ms of CPU per worker here). A
    worker does not need them: it never starts a thread, the zygote forks between calls
    (no lock is held, by construction of a single-threaded process), and tenant code only
    reaches a fresh ``random.Random()`` per invocation (seeded from ``os.urandom``), never the
    module's shared instance. libc's ``fork`` still resets its own state (malloc locks); the
    interpreter's thread id stays valid because the child continues the forking thread.
    With any other thread (a Python one, or one a preloaded library started before the first
    fork), ``os.fork()`` it is.
    """
    global _native_threads
    if _native_threads == 0:
        _native_threads = _thread_count()
    if _native_threads != 1 or threading.active_count() != 1:
        return os.fork()
    pid: int = _libc_fork()
    if pid < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"fork: {os.strerror(code)}")
    return pid


def _thread_count() -> int:
    """Threads of this process, including any a C library started (Python cannot see those)."""
    with open("/proc/self/stat", "rb") as stat:
        return int(stat.read().rsplit(b")", 1)[1].split()[17])


_worker_loop: ModuleType | None = None  # set by _preload: a child does not run the import machinery


def _preload() -> str | None:
    """Import the worker's world; returns why the executor is unavailable, if it is."""
    global _worker_loop
    for name in PRELOAD:
        importlib.import_module(name)
    from runtime.sandbox.guest import worker_loop

    _worker_loop = worker_loop
    try:
        worker_loop.warm_up()  # imports the executor; trusted code only
    except Exception as exc:  # a broken executor must not stop the pool from reporting it
        return f"{type(exc).__name__}: {exc}"
    return None


def forget_zygote_signals() -> None:
    """In a new worker: no more writes to the zygote's wake-up pipe, SIGCHLD as by default."""
    signal.set_wakeup_fd(-1)
    _signal.signal(_SIGCHLD, _SIG_DFL)


PROBE_SOURCE: Final = """
def on_execute_send_phone_message(event, api):
    return {"to": event["message_options"]["recipient"]}
"""
"""The smallest handler: what the page probe runs (every first invocation runs at least this)."""


def _probe_workload() -> None:
    """A new worker's first steps, on trusted code only: reset the zygote's signals, the parent
    death signal, then a first compile and run of :data:`PROBE_SOURCE` and its result frame."""
    forget_zygote_signals()
    oslimits.set_parent_death_signal()
    assert _worker_loop is not None
    _worker_loop.warm_up(PROBE_SOURCE)


def _run_child(
    sock: socket.socket, others: list[socket.socket], request: dict[str, Any], state: _State
) -> None:
    """In the forked child: isolate, then serve; never returns into the zygote loop.

    Any failure before ``ready`` ends the child: the supervisor sees a worker that failed to
    start, never one that runs with fewer layers than the zygote announced.
    """
    code = 70
    try:
        forget_zygote_signals()
        oslimits.set_parent_death_signal()
        if os.getppid() != state.pid:
            os._exit(code)
        for other in others:  # forget them: closerange closes the fds, nothing may reuse them
            other.detach()
        wlimits = oslimits.WorkerLimits(
            memory_bytes=int(request["memory_bytes"]),
            cpu_seconds=int(request["cpu_seconds"]),
            cpu_lifetime_seconds=int(request["cpu_hard"]),
        )
        oslimits.close_fds(sock.fileno())
        if state.cgroups is not None:
            cgroups.join_worker_cgroup(state.cgroups, wlimits.memory_bytes, state.worker_pids)
        if state.prefault is not None:  # in its cgroup: the copies are charged to the worker
            state.prefault.populate()  # the pages it is about to write: one call, not faults
        namespaces.enter(state.empty_dir, mount=state.mount_ns, network=state.net_ns)
        oslimits.apply_spawn_limits(wlimits, workdir="/" if state.mount_ns else state.empty_dir)
        gc.enable()
        worker_loop = _worker_loop
        assert worker_loop is not None

        if state.require_seccomp and state.filter is None:
            worker_loop.refuse(sock, state.seccomp_detail)
        else:
            program = state.filter
            worker_loop.serve(
                sock,
                seccomp=program is not None,
                detail=state.seccomp_detail,
                probes=state.probes,
                on_bind=lambda uid: oslimits.apply_bind_limits(uid, program),
                warm=request.get("warm") is not False,
            )
        code = 0
    finally:
        os._exit(code)


@dataclass
class _State:
    pid: int
    filter: Any
    empty_dir: str
    probes: frozenset[str]
    require_seccomp: bool
    seccomp_detail: str = ""
    mount_ns: bool = False
    net_ns: bool = False
    cgroups: cgroups.CgroupPlan | None = None
    prefault: prefault.PageSet | None = None
    worker_pids: int = 8
    children: set[int] = field(default_factory=set)


def _layers(state: _State, isolation: OsIsolation) -> dict[str, list[Any]]:
    """Decide, once, which OS layers this host gives the workers; prepares the empty root."""
    layers: dict[str, list[Any]] = {}
    if not isolation.namespaces:
        off = "disabled (sandbox_namespaces = false)"
        layers["mount namespace"] = [False, off]
        layers["network namespace"] = [False, off]
    else:
        why = namespaces.probe_unshare(namespaces.CLONE_NEWNET)
        state.net_ns = not why
        layers["network namespace"] = [state.net_ns, why or "own namespace, loopback down"]
        try:
            namespaces.prepare_root(state.empty_dir)
            state.mount_ns = True
            detail = "own namespace; / is an empty read-only tmpfs with a /proc of itself"
        except OSError as exc:
            detail = f"unavailable: {exc}"
        layers["mount namespace"] = [state.mount_ns, detail]
    last = isolation.uid_base + isolation.uid_count - 1
    if os.geteuid() == 0:
        layers["per-tenant uid"] = [True, f"one uid per tenant from {isolation.uid_base}-{last}"]
    else:
        layers["per-tenant uid"] = [False, f"needs root; workers keep uid {os.geteuid()}"]
    plan, detail = cgroups.plan_cgroups(isolation.cgroup_dir, state.pid)
    state.cgroups, state.worker_pids = plan, isolation.worker_pids
    memory = plan is not None and plan.memory
    pids = plan is not None and plan.pids
    layers["cgroup memory"] = [memory, detail + (", memory.max per worker" if memory else "")]
    layers["cgroup pids"] = [
        pids,
        detail + (f", pids.max {isolation.worker_pids} per worker" if pids else ""),
    ]
    layers["seccomp"] = [state.filter is not None, state.seccomp_detail]
    nproc = ", RLIMIT_NPROC 0" if os.geteuid() == 0 else ""
    rlimits = f"RLIMIT_AS, RLIMIT_CPU, RLIMIT_NOFILE {oslimits.NOFILE}, RLIMIT_FSIZE 0, "
    layers["rlimits"] = [True, rlimits + "RLIMIT_CORE 0" + nproc]
    return layers


def _spawn(ctrl: socket.socket, request: dict[str, Any], state: _State) -> None:
    """Fork one worker; its socket and a pidfd go to the supervisor.

    Kept lean: every page the zygote writes between two forks is copied again after the next
    one (fork write-protects them all), so each spawn costs a fault per page it touches.
    """
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        pid = fork()
    except OSError:
        parent_end.close()
        child_end.close()
        raise
    if pid == 0:
        _run_child(child_end, [ctrl, parent_end], request, state)
    child_end.close()
    state.children.add(pid)
    pidfd = os.pidfd_open(pid)  # before any reap: it names exactly this child
    try:
        reply = orjson.dumps({"type": "spawned", "id": request["id"], "pid": pid})
        fds = _TWO_FDS.pack(parent_end.fileno(), pidfd)
        ctrl.sendmsg([reply], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
    finally:
        os.close(pidfd)
        parent_end.close()


def _reap(ctrl: socket.socket, state: _State) -> None:
    while state.children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        state.children.discard(pid)
        oom = state.cgroups is not None and cgroups.remove_worker_cgroup(state.cgroups, pid)
        ctrl.send(orjson.dumps({"type": "exit", "pid": pid, "status": status, "oom": oom}))


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):  # raised only if exactly 4096 bytes were waiting
        while len(os.read(fd, 4096)) == 4096:
            pass


def main(argv: list[str]) -> None:
    """``python -m runtime.sandbox.guest.zygote CTRL_FD [--require-seccomp] [--isolation JSON]
    [--probe-module M]...``.

    Probe modules (tests only) are imported here, before any fork: a worker cannot import
    anything (its root is empty).
    """
    gc.disable()  # until the freeze: no collector passes dirtying pages the workers share
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctrl = socket.socket(fileno=int(argv[0]))
    executor_error = _preload()
    filt, why = oslimits.build_seccomp_filter()
    empty_dir = tempfile.mkdtemp(prefix="phone-actions-empty-")
    os.chmod(empty_dir, 0o555)
    probes = frozenset(argv[i + 1] for i, arg in enumerate(argv) if arg == "--probe-module")
    for module in probes:
        importlib.import_module(module)
    state = _State(os.getpid(), filt, empty_dir, probes, "--require-seccomp" in argv)
    state.seccomp_detail = why or "seccomp filter loaded"
    isolation = OsIsolation()
    if "--isolation" in argv:
        isolation = OsIsolation.from_json(orjson.loads(argv[argv.index("--isolation") + 1]))
    layers = _layers(state, isolation)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    os.environ.clear()  # needed no more (imports are done); a worker then has little to clear
    gc.freeze()  # everything imported so far stays out of collections: pages stay shared
    gc.enable()
    state.prefault = prefault.learn(_probe_workload, fork)
    hello = {
        "type": "hello",
        "pid": state.pid,
        "seccomp": filt is not None,
        "seccomp_detail": why or "seccomp filter built",
        "executor_error": executor_error,
        "empty_dir": empty_dir,  # the client removes it if we die without cleaning up
        "prefault_pages": state.prefault.pages if state.prefault is not None else 0,
        "layers": layers,
    }
    ctrl.send(orjson.dumps(hello))
    poll = select.poll()  # not selectors: fewer objects touched per spawn (see _spawn)
    poll.register(ctrl, select.POLLIN)
    poll.register(wake_r, select.POLLIN)
    try:
        while True:
            for fd, _ in poll.poll():
                if fd == wake_r:
                    _drain(wake_r)
                    _reap(ctrl, state)
                    continue
                data = ctrl.recv(_CTRL_MAX)
                if not data:
                    return
                request = orjson.loads(data)
                if request.get("type") == "spawn":
                    try:
                        _spawn(ctrl, request, state)
                    except OSError as exc:  # e.g. EAGAIN from fork: report, keep serving
                        error = {"type": "error", "id": request.get("id"), "message": str(exc)}
                        ctrl.send(orjson.dumps(error))
    except ConnectionError:  # the supervisor is gone
        return
    finally:
        for pid in state.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in state.children:  # SIGKILLed: quick; a cgroup is removable once reaped
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            if state.cgroups is not None:
                cgroups.remove_worker_cgroup(state.cgroups, pid)
        with contextlib.suppress(OSError):  # already gone is fine: it only had to be empty
            os.rmdir(empty_dir)  # a mount point in our namespace: the client removes it then
        if state.cgroups is not None:
            cgroups.remove_zygote_folder(state.cgroups)


if __name__ == "__main__":
    main(sys.argv[1:])
