"""The supervisor's side of the zygote: starting it, and the worker handles it hands over.

The zygote (:mod:`runtime.sandbox.guest.zygote`) forks each worker and sends back its socket
and a pidfd, so a later SIGKILL (the deadline's, :mod:`runtime.sandbox.host.invocation`) can
never hit a recycled pid. Running an invocation on a worker is
:mod:`runtime.sandbox.host.invocation`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from runtime.sandbox.guest import oslimits
from runtime.sandbox.host.frame_protocol import FrameProtocol
from runtime.sandbox.shared.frames import (
    MAX_FRAME_TO_WORKER,
    ConnectionClosed,
    ProtocolError,
    SourceDigests,
    encode_frame,
)
from runtime.sandbox.shared.oslayers import OsIsolation

__all__ = ["Worker", "ZygoteClient", "ZygoteError"]

log = logging.getLogger(__name__)

_CTRL_MAX: Final = 65536
_STARTUP_BUDGET: Final = 60.0


class ZygoteError(RuntimeError):
    """The zygote could not be started, or died."""


@dataclass(eq=False)
class Worker:
    """The supervisor's handle on one worker process (never trusted after tenant code ran)."""

    pid: int
    pidfd: int
    conn: FrameProtocol
    limits: oslimits.WorkerLimits
    exited: asyncio.Future[int | None]
    sock: socket.socket | None = None
    seccomp: bool = False
    tenant: str | None = None
    state: str = "spawning"  # spawning | spare | idle | busy | gone
    invocations: int = 0
    retire: bool = False
    uid: int | None = None  # the tenant uid it was bound to
    oom_killed: bool = False  # its cgroup counted an OOM kill (set with ``exited``)
    sources: SourceDigests = field(default_factory=SourceDigests)  # what it was sent
    _unsent: bytes = b""  # the bind frame, written with the next frame

    def bind(self, tenant: str, uid: int | None) -> None:
        """Bind a fresh worker to ``tenant``: it drops to ``uid`` and loads seccomp before it
        reads the next frame. No reply, so the bind frame waits and goes out in the same write
        as the invocation's frame (one wake-up of the worker, not two)."""
        self.tenant, self.uid = tenant, uid
        message = {"type": "bind", "tenant": tenant, "uid": uid}
        self._unsent = encode_frame(message, max_size=MAX_FRAME_TO_WORKER)

    def send(self, frame: bytes) -> None:
        """Write ``frame`` (after the bind frame, if that is still waiting)."""
        if self._unsent:
            frame, self._unsent = self._unsent + frame, b""
        self.conn.send(frame)

    def kill(self) -> None:
        """SIGKILL through the pidfd (race-free) and drop our ends; idempotent."""
        if self.pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        self.forget_pid()
        self.conn.close()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def forget_pid(self) -> None:
        """Close the pidfd: once reaped, the pid may belong to someone else."""
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1


def _zygote_env() -> dict[str, str]:
    paths = [p for p in sys.path if p and os.path.exists(p)]
    return {"PYTHONPATH": os.pathsep.join(paths), "LC_ALL": "C.UTF-8"}


class ZygoteClient:
    """Start the zygote, ask it for workers, and route exit statuses to them."""

    def __init__(self, on_exit: Callable[[Worker], None]) -> None:
        self._on_exit = on_exit
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future[Worker], oslimits.WorkerLimits]] = {}
        self._workers: dict[int, Worker] = {}
        self._hello: asyncio.Future[dict[str, Any]] | None = None
        self._ctrl: socket.socket | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self.info: dict[str, Any] = {}
        self.spawned = 0

    @property
    def alive(self) -> bool:
        return self._ctrl is not None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(
        self,
        *,
        probes: tuple[str, ...],
        require_seccomp: bool,
        isolation: OsIsolation | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        flags = ["--require-seccomp"] * require_seccomp
        if isolation is not None:
            flags += ["--isolation", orjson.dumps(isolation.to_json()).decode()]
        for module in probes:
            flags += ["--probe-module", module]
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *(
                    sys.executable,
                    "-s",
                    "-m",
                    "runtime.sandbox.guest.zygote",
                    str(theirs.fileno()),
                    *flags,
                ),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                env=_zygote_env(),
                cwd="/",
                start_new_session=True,
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        self._ctrl = ours
        self._hello = loop.create_future()
        loop.add_reader(ours.fileno(), self._readable)
        try:
            async with asyncio.timeout(_STARTUP_BUDGET):
                self.info = await self._hello
        except BaseException:
            await self.aclose()
            raise

    async def spawn(self, wlimits: oslimits.WorkerLimits, *, warm: bool = True) -> Worker:
        """Fork a worker; returns once it has applied its limits and said ``ready``.

        ``warm``: the worker warms its caches before ``ready`` (see :func:`worker.serve`)."""
        if self._ctrl is None:
            raise ZygoteError("the zygote is not running")
        loop = asyncio.get_running_loop()
        request_id = next(self._ids)
        future: asyncio.Future[Worker] = loop.create_future()
        self._pending[request_id] = (future, wlimits)
        request = {
            "type": "spawn",
            "id": request_id,
            "memory_bytes": wlimits.memory_bytes,
            "cpu_seconds": wlimits.cpu_seconds,
            "cpu_hard": wlimits.cpu_hard,
            "warm": warm,
        }
        try:
            await loop.sock_sendall(self._ctrl, orjson.dumps(request))
            worker = await future
        finally:
            self._pending.pop(request_id, None)
        try:
            sock, worker.sock = worker.sock, None
            assert sock is not None
            await loop.create_unix_connection(lambda: worker.conn, sock=sock)
            ready = await worker.conn.recv()
            if ready.get("type") != "ready":
                raise ZygoteError(f"worker {worker.pid} did not report ready")
        except (ConnectionClosed, ProtocolError) as exc:
            worker.kill()
            status = await worker.exited if worker.exited.done() else None
            raise ZygoteError(f"worker {worker.pid} failed to start ({exc}, {status=})") from None
        except BaseException:
            worker.kill()
            raise
        worker.seccomp = ready.get("seccomp") is True
        if ready.get("refused"):
            worker.kill()
            raise ZygoteError(f"worker refused to start: {ready.get('detail')}")
        self.spawned += 1
        return worker

    def _readable(self) -> None:
        while self._ctrl is not None:
            try:
                data, fds, _flags, _ = socket.recv_fds(
                    self._ctrl, _CTRL_MAX, 4, socket.MSG_CMSG_CLOEXEC
                )
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if not data:
                self._lost()
                return
            self._dispatch(orjson.loads(data), fds)

    def _dispatch(self, message: dict[str, Any], fds: list[int]) -> None:
        kind = message.get("type")
        if kind == "spawned" and len(fds) == 2:
            self._adopt(message, fds[0], fds[1])
            return
        for fd in fds:
            os.close(fd)
        if kind == "exit":
            worker = self._workers.pop(message["pid"], None)
            if worker is not None:
                worker.forget_pid()
                worker.oom_killed = message.get("oom") is True
                if not worker.exited.done():
                    worker.exited.set_result(int(message["status"]))
                self._on_exit(worker)
        elif kind == "error":
            pending = self._pending.get(int(message["id"]))
            if pending is not None and not pending[0].done():
                pending[0].set_exception(ZygoteError(str(message.get("message"))))
        elif kind == "hello" and self._hello is not None and not self._hello.done():
            self._hello.set_result(message)

    def _adopt(self, message: dict[str, Any], sock_fd: int, pidfd: int) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(fileno=sock_fd)
        sock.setblocking(False)
        pending = self._pending.get(int(message["id"]))
        worker = Worker(
            pid=int(message["pid"]),
            pidfd=pidfd,
            conn=FrameProtocol(),
            limits=pending[1] if pending else oslimits.WorkerLimits(0, 0),
            exited=loop.create_future(),
            sock=sock,
        )
        self._workers[worker.pid] = worker
        if pending is None or pending[0].done():  # the requester gave up: do not leak it
            worker.kill()
            return
        pending[0].set_result(worker)

    def _lost(self) -> None:
        """The zygote is gone: its workers die with it (PDEATHSIG)."""
        empty_dir = self.info.get("empty_dir")
        if type(empty_dir) is str and empty_dir.startswith(tempfile.gettempdir()):
            with contextlib.suppress(OSError):
                os.rmdir(empty_dir)  # already gone unless the zygote was killed
        if self._ctrl is not None:
            asyncio.get_running_loop().remove_reader(self._ctrl.fileno())
            self._ctrl.close()
            self._ctrl = None
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(ZygoteError("the zygote exited"))
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(ZygoteError("the zygote exited during start-up"))
        workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.kill()
            if not worker.exited.done():
                worker.exited.set_result(None)
            self._on_exit(worker)

    async def aclose(self) -> None:
        self._lost()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            async with asyncio.timeout(5.0):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
