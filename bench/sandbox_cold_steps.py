"""Where a new tenant's time goes: each step of a worker's start, in the worker itself.

``bench/sandbox.py`` says what a cold start costs per process (supervisor, zygote, workers);
this says which step inside a worker costs it. It does what the zygote does before it forks
(preload, seccomp filter, the empty root in a private mount namespace, ``gc.freeze``, the page
probe of :mod:`runtime.sandbox.guest.prefault` unless ``--no-prefault``), then forks
``--count`` children that run the zygote's steps one by one (signals, pdeathsig, fds, the
prefault, namespaces, rlimits, the ready frame, the warm-up with ``--warm``, the bind: uid,
``no_new_privs``, seccomp)
and then a first and a second compile and run of a trivial handler, as a new tenant's first
invocation would. Each step reports its wall time, its CPU time and its minor page faults
(copy-on-write faults of pages shared with the parent dominate: on a VM each costs a few
microseconds), as medians over the children. Needs root (namespaces, uid switch).

    .venv/bin/python bench/sandbox_cold_steps.py [--count N] [--warm] [--no-namespaces]
                                                 [--no-prefault]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.sandbox.guest import namespaces, oslimits, prefault, worker_loop, zygote
from runtime.sandbox.shared.contract import HANDLERS, SandboxLimits, Trigger
from runtime.sandbox.shared.frames import HEADER, BlockingChannel

TRIGGER: Trigger = "send-phone-message"
SOURCE = f"""
def {HANDLERS[TRIGGER]}(event, api):
    return {{"to": event["message_options"]["recipient"]}}
"""
EVENT = {"message_options": {"recipient": "+14155550100", "text": "x", "code": "1"}}
TENANT_UID = 100123

Mark = tuple[str, float, float, int]


def _mark(name: str) -> Mark:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return name, time.perf_counter(), usage.ru_utime + usage.ru_stime, usage.ru_minflt


def _child(sock: socket.socket, args: argparse.Namespace, state: dict[str, Any]) -> None:
    """The steps of ``zygote._run_child`` and a first invocation, each timed; never returns."""
    marks = [_mark("start")]
    try:
        zygote.forget_zygote_signals()
        marks.append(_mark("signals (wakeup fd, SIGCHLD)"))
        oslimits.set_parent_death_signal()
        marks.append(_mark("pdeathsig"))
        oslimits.close_fds(sock.fileno())
        marks.append(_mark("close fds"))
        if state["prefault"] is not None:
            state["prefault"].populate()
            marks.append(_mark(f"prefault ({state['prefault'].pages} pages)"))
        if args.namespaces:
            namespaces.enter(state["empty_dir"], mount=True, network=True)
            marks.append(_mark("namespaces (net, mnt, pivot, proc)"))
        limits = oslimits.WorkerLimits(256 << 20, 5)
        oslimits.apply_spawn_limits(limits, workdir="/" if args.namespaces else state["empty_dir"])
        marks.append(_mark("spawn rlimits, environment"))
        gc.enable()
        chan = BlockingChannel(sock)
        chan.send({"type": "ready", "seccomp": True, "detail": ""})
        marks.append(_mark("ready frame"))
        if args.warm:
            worker_loop.warm_up()
            marks.append(_mark("warm-up handler"))
        oslimits.apply_bind_limits(TENANT_UID, state["filter"])
        marks.append(_mark("bind (uid, no_new_privs, seccomp)"))
        from runtime.sandbox.guest import compiler, executor

        sandbox_limits = SandboxLimits()
        for label, source in (("first", SOURCE), ("second", SOURCE + "\n# again\n")):
            compiled = compiler.compile_action(
                source, name="steps", trigger=TRIGGER, limits=sandbox_limits
            )
            marks.append(_mark(f"{label} compile"))
            result = executor.run_action(
                compiled, EVENT, worker_loop._NullChannel(), sandbox_limits
            )
            result.model_dump(mode="json")
            marks.append(_mark(f"{label} run"))
        sock.sendall(json.dumps(marks).encode())
    finally:
        os._exit(0)


def _zygote_like(args: argparse.Namespace) -> dict[str, Any]:
    """The zygote's state before its first fork (its ``main`` up to ``gc.freeze``)."""
    gc.disable()
    zygote._preload()
    program, why = oslimits.build_seccomp_filter()
    if program is None:
        raise SystemExit(f"no seccomp: {why}")
    empty_dir = tempfile.mkdtemp(prefix="phone-actions-steps-")
    os.chmod(empty_dir, 0o555)
    namespaces.prepare_root(empty_dir)
    signal.set_wakeup_fd(os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)[1])  # as the zygote does
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    os.environ.clear()
    gc.freeze()
    gc.enable()
    pages = prefault.learn(zygote._probe_workload, zygote.fork) if args.prefault else None
    return {"filter": program, "empty_dir": empty_dir, "prefault": pages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=50, help="children to fork (default 50)")
    parser.add_argument("--warm", action="store_true", help="run the warm-up as a spare does")
    parser.add_argument("--no-namespaces", dest="namespaces", action="store_false")
    parser.add_argument("--no-prefault", dest="prefault", action="store_false")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (namespaces, uid switch)")
    state = _zygote_like(args)
    steps: dict[str, list[tuple[float, float, int]]] = {}
    forks: list[float] = []
    lives: list[float] = []
    for _ in range(args.count):
        ours, theirs = socket.socketpair()
        forked = time.perf_counter()
        pid = zygote.fork()
        if pid == 0:
            ours.close()
            _child(theirs, args, state)
        forks.append((time.perf_counter() - forked) * 1000)
        theirs.close()
        data = b""
        while chunk := ours.recv(65536):
            data += chunk
        ours.close()
        data = data[HEADER.size + HEADER.unpack_from(data)[0] :]  # after the ready frame
        usage = os.wait4(pid, 0)[2]
        lives.append((usage.ru_utime + usage.ru_stime) * 1000)
        marks: list[Mark] = [tuple(mark) for mark in json.loads(data)]
        previous = ("fork", forked, 0.0, 0)
        for name, wall, cpu, faults in marks:
            step = "fork to child start" if name == "start" else name
            row = ((wall - previous[1]) * 1000, (cpu - previous[2]) * 1000, faults - previous[3])
            steps.setdefault(step, []).append(row)
            previous = (name, wall, cpu, faults)
    print(
        f"{args.count} children, warm-up {args.warm}, namespaces {args.namespaces}, "
        f"prefault {args.prefault}; medians"
    )
    print(f"{'step':<36}{'wall ms':>9}{'CPU ms':>9}{'faults':>8}")
    print(f"{'fork() in the parent':<36}{statistics.median(forks):>9.3f}")
    for step, rows in steps.items():
        wall, cpu, faults = (statistics.median(column) for column in zip(*rows, strict=True))
        print(f"{step:<36}{wall:>9.3f}{cpu:>9.3f}{faults:>8.0f}")
    print(f"{'whole child life (wait4 rusage)':<36}{'':>9}{statistics.median(lives):>9.3f}")


if __name__ == "__main__":
    main()
