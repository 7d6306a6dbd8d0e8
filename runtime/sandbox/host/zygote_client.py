"""The supervisor's side of the worker processes: the zygote client, worker handles, and
running one invocation on one worker.

The worker is untrusted from the moment tenant code runs in it, so every frame it sends is
checked here: RPCs carry the id of the current invocation, results are re-validated and capped
(:func:`runtime.sandbox.shared.frames.checked_result`), HTTP calls are recorded from the
supervisor's own view, and anything unexpected kills the worker. The wall-clock deadline is
enforced from outside with SIGKILL (docs/sandbox.md), through a pidfd the zygote hands over
with each worker, so the kill can never hit a recycled pid.
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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson

from runtime.sandbox.guest import oslimits
from runtime.sandbox.host.refusals import ApiRefused
from runtime.sandbox.shared.contract import HttpCall, InvocationResult, Outcome, SandboxLimits
from runtime.sandbox.shared.exits import EXIT_ISOLATION, EXIT_MEMORY
from runtime.sandbox.shared.frames import (
    MAX_FRAME_TO_WORKER,
    ConnectionClosed,
    FrameProtocol,
    FrameTooLarge,
    ProtocolError,
    SourceDigests,
    checked_result,
    encode_frame,
    expect_int,
    expect_str,
    http_call,
)
from runtime.sandbox.shared.oslayers import OsIsolation

__all__ = [
    "ApiRefused",
    "Services",
    "Worker",
    "ZygoteClient",
    "ZygoteError",
    "run_invocation",
]

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


class Services(Protocol):
    """Supervisor-side handlers of a worker's ``api`` calls (HTTP egress, cache, ...).

    The pool passes the tenant it is serving, never one a worker claims. ``deadline`` is the
    invocation's end in ``time.monotonic()`` seconds.
    """

    async def handle(
        self,
        tenant: str,
        op: str,
        params: dict[str, Any],
        deadline: float,
        *,
        scope: dict[str, Any],
    ) -> Any:
        """Serve ``op``; raise :class:`~runtime.sandbox.host.refusals.ApiRefused` to refuse it.

        ``scope`` is a dict private to this invocation, for per-invocation state (the HTTP
        request budget that redirect hops also draw on).
        """
        ...


@dataclass
class _Calls:
    http: list[HttpCall] = field(default_factory=list)
    handed_off: bool = False
    in_flight: HttpCall | None = None  # an HTTP call still waiting for its answer
    scope: dict[str, Any] = field(default_factory=dict)  # the services' per-invocation state

    def ended(self, outcome: Outcome, error: str) -> InvocationResult:
        """The result of an invocation stopped from outside. A request still in flight may
        already have reached its server: it counts as handed off."""
        http = [*self.http, self.in_flight] if self.in_flight else self.http
        handed_off = self.handed_off or self.in_flight is not None
        return InvocationResult(outcome=outcome, error=error, http=http, handed_off=handed_off)


async def run_invocation(
    worker: Worker,
    services: Services,
    *,
    tenant: str,
    invocation: int,
    frame: bytes,
    limits: SandboxLimits,
    deadline: float,
    trigger: str | None = None,
) -> tuple[InvocationResult, bool]:
    """Run one encoded ``invoke`` frame; returns the result and whether the worker is reusable.

    ``trigger`` goes into the services' per-invocation ``scope`` (``api.cache`` is scoped to it).
    """
    calls = _Calls()
    if trigger is not None:
        calls.scope["trigger"] = trigger
    try:
        worker.send(frame)
        async with asyncio.timeout_at(deadline):
            while True:
                message = await worker.conn.recv()
                if message["type"] == "result":
                    break
                if message["type"] != "rpc_request":
                    raise ProtocolError(f"unexpected {message['type']!r} frame")
                reply = await _serve_rpc(
                    services, tenant, invocation, message, limits, calls, deadline
                )
                worker.conn.send(reply)
        if expect_int(message, "id") != invocation:
            raise ProtocolError("result for another invocation")
        result = checked_result(message.get("result"), limits, calls.http, calls.handed_off)
    except TimeoutError:
        worker.kill()
        return calls.ended("timeout", f"wall-clock budget of {limits.timeout:g} s exceeded"), False
    except FrameTooLarge as exc:
        worker.kill()
        return calls.ended("output_limit", f"worker output too large: {exc}"), False
    except ProtocolError:
        worker.kill()
        return calls.ended("runtime_error", "worker protocol violation"), False
    except ConnectionClosed:
        return await _died(worker, deadline, limits, calls), False
    worker.retire = message.get("retire") is True
    return result, result.outcome == "ok"


async def _serve_rpc(
    services: Services,
    tenant: str,
    invocation: int,
    message: dict[str, Any],
    limits: SandboxLimits,
    calls: _Calls,
    deadline: float,
) -> bytes:
    """Serve one ``rpc_request`` and return the encoded ``rpc_response``."""
    if expect_int(message, "id") != invocation:
        raise ProtocolError("rpc_request for another invocation")
    op = expect_str(message, "op", max_len=64)
    params = message.get("params")
    if type(params) is not dict:
        raise ProtocolError("rpc_request.params must be an object")
    reply: dict[str, Any] = {"type": "rpc_response", "id": invocation}
    is_http = op == "http.request"
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        if is_http and len(calls.http) >= limits.max_http_requests:
            raise ApiRefused(f"too many HTTP requests (limit {limits.max_http_requests})")
        monotonic_deadline = time.monotonic() + (deadline - loop.time())  # any loop clock
        if is_http:
            stopped = {"ok": False, "error": "stopped before an answer came"}
            calls.in_flight = http_call(params, stopped, 0.0)
        value = await services.handle(tenant, op, params, monotonic_deadline, scope=calls.scope)
        reply |= {"ok": True, "value": value}
    except ApiRefused as exc:
        reply |= {"ok": False, "error": str(exc)[:1024]}
        calls.handed_off |= exc.maybe_sent
    except Exception:
        log.exception("sandbox api %s failed for tenant %s", op, tenant)
        reply |= {"ok": False, "error": f"api.{op}: internal error"}
    if is_http:
        calls.in_flight = None
        call = http_call(params, reply, (loop.time() - started) * 1000)
        calls.http.append(call)
        calls.handed_off |= call.status is not None and 200 <= call.status < 300
    try:
        return encode_frame(reply, max_size=MAX_FRAME_TO_WORKER)
    except (FrameTooLarge, TypeError, ValueError):
        error = f"api.{op}: answer too large or not JSON"
        failure = {"type": "rpc_response", "id": invocation, "ok": False, "error": error}
        return encode_frame(failure, max_size=MAX_FRAME_TO_WORKER)


async def _died(
    worker: Worker, deadline: float, limits: SandboxLimits, calls: _Calls
) -> InvocationResult:
    """The worker's socket closed mid-invocation: say why from its exit status."""
    remaining = max(deadline - asyncio.get_running_loop().time(), 0.0)
    done, _ = await asyncio.wait([worker.exited], timeout=remaining)
    worker.kill()
    if not done:
        return calls.ended("timeout", "worker stopped answering")
    status = worker.exited.result()
    if status is None:
        return calls.ended("runtime_error", "sandbox worker lost (zygote gone)")
    code = os.waitstatus_to_exitcode(status)
    if code == -signal.SIGXCPU:
        return calls.ended("timeout", f"CPU time limit exceeded ({limits.cpu_seconds} s)")
    if code == EXIT_MEMORY or (code == -signal.SIGKILL and worker.oom_killed):
        return calls.ended("memory_limit", "worker ran out of memory")
    if code == EXIT_ISOLATION:
        return calls.ended("runtime_error", "sandbox worker could not drop privileges")
    if code < 0:
        name = _signal_name(-code)
        if -code in _CRASHES:
            return calls.ended("runtime_error", f"worker crashed ({name})")
        return calls.ended("worker_killed", f"worker killed by {name}")
    return calls.ended("runtime_error", f"worker exited unexpectedly (status {code})")


_CRASHES: Final = frozenset(
    {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT, signal.SIGSYS}
)
"""Signals a process sends itself when it breaks; any other signal came from outside (our
own kills are the deadline's, judged before this)."""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
