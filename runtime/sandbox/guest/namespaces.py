"""Mount and network namespaces for workers: an empty read-only root and no network.

Why: seccomp still allows read-only ``openat`` (Python must be able to stat and read), so
native code in a worker could read host files (``/etc/hostname``, other tenants' scripts,
``/proc/<supervisor>/cmdline``). A worker therefore gets its own mount namespace whose root is
an empty read-only tmpfs holding only a ``/proc`` that shows the worker itself (``subset=pid``,
``hidepid=invisible``), and its own network namespace with nothing but a down loopback. It
never needs the network: its ``api`` calls go to the supervisor over its socket.

The zygote prepares the tmpfs once, in a private mount namespace of its own
(:func:`prepare_root`), so a worker only has to ``unshare`` and ``pivot_root`` into it after
the fork (:func:`enter`), when every module is already imported. Python 3.11 has no
``os.unshare``: the calls go through libc with ctypes. Both need root (``CAP_SYS_ADMIN``).
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

__all__ = ["CLONE_NEWNET", "CLONE_NEWNS", "enter", "prepare_root", "probe_unshare"]

CLONE_NEWNS: Final = 0x00020000
CLONE_NEWNET: Final = 0x40000000
_MS_RDONLY: Final = 0x1
_MS_NOSUID: Final = 0x2
_MS_NODEV: Final = 0x4
_MS_NOEXEC: Final = 0x8
_MS_REMOUNT: Final = 0x20
_MS_REC: Final = 0x4000
_MS_PRIVATE: Final = 1 << 18
_MNT_DETACH: Final = 2
_SYS_PIVOT_ROOT: Final = 155  # x86_64
_LOCKED: Final = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
_PROC_OPTIONS: Final = b"subset=pid,hidepid=invisible"

_libc: Final = ctypes.CDLL(None, use_errno=True)
# Typed once, in the zygote: a worker's calls then convert plain ints and bytes without building
# ctypes objects or resolving symbols, which would dirty pages it shares with the zygote.
_libc_unshare: Final = _libc.unshare
_libc_unshare.argtypes = (ctypes.c_int,)
_libc_unshare.restype = ctypes.c_int
_libc_mount: Final = _libc.mount
_libc_mount.argtypes = (
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
)
_libc_mount.restype = ctypes.c_int
_libc_umount2: Final = _libc.umount2
_libc_umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc_umount2.restype = ctypes.c_int
_libc_pivot_root: Final = _libc.syscall  # glibc has no pivot_root wrapper
_libc_pivot_root.argtypes = (ctypes.c_long, ctypes.c_char_p, ctypes.c_char_p)
_libc_pivot_root.restype = ctypes.c_int


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _unshare(flags: int) -> None:
    _check(_libc_unshare(flags), "unshare")


def _mount(
    source: bytes | None, target: bytes, fstype: bytes | None, flags: int, data: bytes | None
) -> None:
    _check(_libc_mount(source, target, fstype, flags, data), f"mount {target!r}")


def probe_unshare(flags: int) -> str:
    """``""`` if a child of this process can ``unshare(flags)``, else why not (forks once)."""
    if os.geteuid() != 0:
        return f"needs root (CAP_SYS_ADMIN); the service runs as uid {os.geteuid()}"
    pid = os.fork()
    if pid == 0:
        try:
            _unshare(flags)
            os._exit(0)
        except OSError as exc:
            os._exit(min(exc.errno or 1, 125))
        finally:
            os._exit(126)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return "" if code == 0 else f"unshare refused by the host: {os.strerror(code)}"


def prepare_root(empty_dir: str) -> None:
    """In the zygote: a private mount namespace with an empty read-only tmpfs on ``empty_dir``.

    Raises ``OSError`` when the host forbids it (not root, a container without
    ``CAP_SYS_ADMIN``); the zygote then reports the layer as unavailable.
    """
    _unshare(CLONE_NEWNS)
    _mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None)  # nothing propagates to the host
    target = os.fsencode(empty_dir)
    _mount(b"tmpfs", target, b"tmpfs", _LOCKED, b"size=16k,nr_inodes=8,mode=0555")
    os.mkdir(os.path.join(empty_dir, "proc"), 0o555)
    _mount(None, target, None, _MS_REMOUNT | _MS_RDONLY | _LOCKED, None)


def enter(empty_dir: str, *, mount: bool, network: bool) -> None:
    """In a new worker (still root): its own namespaces, then ``empty_dir`` as ``/``.

    The old root is detached entirely, so no path leads back to host files; ``/proc`` is a
    fresh instance showing only processes this worker may see once it runs as the tenant's
    uid (itself).
    """
    flags = (CLONE_NEWNS if mount else 0) | (CLONE_NEWNET if network else 0)
    if not flags:
        return
    _unshare(flags)
    if not mount:
        return
    os.chdir(empty_dir)
    _check(_libc_pivot_root(_SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    _check(_libc_umount2(b".", _MNT_DETACH), "umount2 old root")
    os.chdir("/")
    _mount(b"proc", b"/proc", b"proc", _LOCKED, _PROC_OPTIONS)
