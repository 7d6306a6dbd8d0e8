"""cgroup v2 limits for workers: one cgroup per worker under a delegated subtree.

Why: ``RLIMIT_AS`` bounds address space, not what a worker really costs the host (resident
pages, page tables, kernel memory), and ``RLIMIT_NPROC`` counts per uid. A cgroup per worker
gets ``memory.max`` (RSS-accurate, swap off) and ``pids.max``, and tells a memory death (the
cgroup's ``oom_kill`` count) apart from a SIGKILL sent by someone else.

Layout: ``<root>/zygote-<pid>/worker-<pid>``. The zygote creates its folder and enables the
controllers for its children (a cgroup with controllers for children may hold no process
itself); each worker creates and joins its own cgroup right after the fork, before it leaves
the host's mount namespace; the zygote reads ``memory.events`` and removes the folder when it
reaps the worker. ``root`` is ``sandbox_cgroup_dir``: ``auto`` is ``phone-actions`` at the top
of the cgroup2 mount, ``off`` disables the layer. Where the host has no usable cgroup v2 (not
writable, or the memory/pids controllers are bound to cgroup v1), the layer is skipped with a
reason that the supervisor logs once.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "CgroupPlan",
    "join_worker_cgroup",
    "plan_cgroups",
    "remove_worker_cgroup",
    "remove_zygote_folder",
]

_CONTROLLERS: Final = ("memory", "pids")


@dataclass(frozen=True)
class CgroupPlan:
    """Where this zygote's worker cgroups go and which limits the host lets us set."""

    folder: str
    memory: bool
    pids: bool


def _cgroup2_mount() -> str | None:
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                return left.split(" ")[4]
    return None


def _controllers(folder: Path) -> set[str]:
    return set((folder / "cgroup.controllers").read_text().split())


def _enable(folder: Path, wanted: set[str]) -> None:
    active = set((folder / "cgroup.subtree_control").read_text().split())
    for name in sorted(wanted - active):
        with contextlib.suppress(OSError):  # refused: the controller stays unavailable below
            (folder / "cgroup.subtree_control").write_text(f"+{name}")


def plan_cgroups(setting: str, zygote_pid: int) -> tuple[CgroupPlan | None, str]:
    """Create this zygote's folder: ``(plan, detail)``, or ``(None, why the layer is off)``."""
    if setting == "off":
        return None, "disabled (sandbox_cgroup_dir = off)"
    try:
        if setting == "auto":
            mount = _cgroup2_mount()
            if mount is None:
                return None, "no cgroup2 file system mounted"
            root = Path(mount) / "phone-actions"
            available = _controllers(Path(mount)) & set(_CONTROLLERS)
            if not available:
                return None, (
                    f"cgroup v2 at {mount} offers neither memory nor pids (bound to cgroup v1 "
                    "on this host?); set sandbox_cgroup_dir to a delegated cgroup v2 folder"
                )
            root.mkdir(exist_ok=True)
            _enable(Path(mount), available)
        else:
            root = Path(setting)
            if not (root / "cgroup.controllers").is_file():
                return None, f"sandbox_cgroup_dir {setting}: not a cgroup v2 folder"
        _remove_stale(root)
        _enable(root, set(_CONTROLLERS))
        folder = root / f"zygote-{zygote_pid}"
        folder.mkdir(exist_ok=True)
        _enable(folder, _controllers(folder) & set(_CONTROLLERS))
        got = _controllers(folder) & set(_CONTROLLERS)
    except OSError as exc:
        return None, f"cgroup v2 not writable here: {exc}"
    plan = CgroupPlan(str(folder), "memory" in got, "pids" in got)
    missing = [name for name in _CONTROLLERS if name not in got]
    detail = f"a cgroup per worker under {folder}"
    if missing:
        detail += f"; controllers missing: {', '.join(missing)}"
    return plan, detail


def _remove_stale(root: Path) -> None:
    """Folders of zygotes that died without cleaning up (their workers died with them)."""
    for folder in root.glob("zygote-*"):
        pid = folder.name.removeprefix("zygote-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):
                for child in folder.glob("worker-*"):
                    child.rmdir()
                folder.rmdir()


def join_worker_cgroup(plan: CgroupPlan, memory_bytes: int, pids_max: int) -> None:
    """In a new worker (root, still in the host's mount namespace): create, limit and join."""
    folder = Path(plan.folder) / f"worker-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        folder.rmdir()  # a stale one with a reused pid: its counters must not be ours
    folder.mkdir()
    if plan.memory:
        (folder / "memory.max").write_text(str(memory_bytes))
        with contextlib.suppress(FileNotFoundError):  # no swap accounting on this kernel
            (folder / "memory.swap.max").write_text("0")
    if plan.pids:
        (folder / "pids.max").write_text(str(pids_max))
    (folder / "cgroup.procs").write_text("0")


def remove_worker_cgroup(plan: CgroupPlan, pid: int) -> bool:
    """In the zygote, once ``pid`` is reaped: remove its cgroup; True if it was OOM-killed."""
    folder = Path(plan.folder) / f"worker-{pid}"
    oom = False
    with contextlib.suppress(OSError):
        for line in (folder / "memory.events").read_text().splitlines():
            name, _, count = line.partition(" ")
            oom |= name == "oom_kill" and count.strip() != "0"
    with contextlib.suppress(OSError):
        folder.rmdir()
    return oom


def remove_zygote_folder(plan: CgroupPlan) -> None:
    """At zygote exit: its folder (worker folders are removed as they are reaped)."""
    with contextlib.suppress(OSError):
        for child in Path(plan.folder).glob("worker-*"):
            child.rmdir()
        os.rmdir(plan.folder)
