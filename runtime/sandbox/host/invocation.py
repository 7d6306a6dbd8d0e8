"""Running one invocation on one worker: the deadline, the worker's RPCs, the result's checks.

The worker is untrusted from the moment tenant code runs in it, so every frame it sends is
checked here: RPCs carry the id of the current invocation, results are re-validated and capped
(:func:`runtime.sandbox.shared.frames.checked_result`), HTTP calls are recorded from the
supervisor's own view, and anything unexpected kills the worker. The wall-clock deadline is
enforced from outside with SIGKILL (docs/sandbox.md), through the worker's pidfd, so the kill
can never hit a recycled pid.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from runtime.sandbox.host.context import InvocationContext
from runtime.sandbox.host.egress.wire import may_have_taken
from runtime.sandbox.host.refusals import ApiRefused
from runtime.sandbox.host.zygote_client import Worker
from runtime.sandbox.shared.contract import HttpCall, InvocationResult, Outcome, SandboxLimits
from runtime.sandbox.shared.exits import EXIT_ISOLATION, EXIT_MEMORY
from runtime.sandbox.shared.frames import (
    MAX_FRAME_TO_WORKER,
    ConnectionClosed,
    FrameTooLarge,
    ProtocolError,
    checked_result,
    encode_frame,
    expect_int,
    expect_str,
    http_call,
)

__all__ = ["Services", "run_invocation"]

log = logging.getLogger(__name__)


class Services(Protocol):
    """Supervisor-side handlers of a worker's ``api`` calls (HTTP egress, cache, ...).

    ``context`` is the pool's, never anything a worker claims: the tenant it serves, the
    trigger, the deadline and the invocation's HTTP budget.
    """

    async def handle(self, context: InvocationContext, op: str, params: dict[str, Any]) -> Any:
        """Serve ``op``; raise :class:`~runtime.sandbox.host.refusals.ApiRefused` to refuse it."""
        ...


@dataclass
class _Calls:
    http: list[HttpCall] = field(default_factory=list)
    handed_off: bool = False
    in_flight: HttpCall | None = None  # an HTTP call still waiting for its answer

    def ended(self, outcome: Outcome, error: str) -> InvocationResult:
        """The result of an invocation stopped from outside. A request still in flight may
        already have reached its server: it counts as handed off."""
        http = [*self.http, self.in_flight] if self.in_flight else self.http
        handed_off = self.handed_off or self.in_flight is not None
        return InvocationResult(outcome=outcome, error=error, http=http, handed_off=handed_off)


async def run_invocation(
    worker: Worker,
    services: Services,
    context: InvocationContext,
    *,
    invocation: int,
    frame: bytes,
) -> tuple[InvocationResult, bool]:
    """Run one encoded ``invoke`` frame until ``context.deadline``; returns the result and
    whether the worker is reusable."""
    calls = _Calls()
    limits = context.limits
    deadline = asyncio.get_running_loop().time() + context.remaining()  # any loop clock
    try:
        worker.send(frame)
        async with asyncio.timeout_at(deadline):
            while True:
                message = await worker.conn.recv()
                if message["type"] == "result":
                    break
                if message["type"] != "rpc_request":
                    raise ProtocolError(f"unexpected {message['type']!r} frame")
                reply = await _serve_rpc(services, context, invocation, message, calls)
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
    context: InvocationContext,
    invocation: int,
    message: dict[str, Any],
    calls: _Calls,
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
        limit = context.limits.max_http_requests
        if is_http and len(calls.http) >= limit:
            raise ApiRefused(f"too many HTTP requests (limit {limit})")
        if is_http:
            stopped = {"ok": False, "error": "stopped before an answer came"}
            calls.in_flight = http_call(params, stopped, 0.0)
        value = await services.handle(context, op, params)
        reply |= {"ok": True, "value": value}
    except ApiRefused as exc:
        reply |= {"ok": False, "error": str(exc)[:1024]}
        calls.handed_off |= exc.maybe_sent
    except Exception:
        log.exception("sandbox api %s failed for tenant %s", op, context.tenant)
        reply |= {"ok": False, "error": f"api.{op}: internal error"}
    if is_http:
        calls.in_flight = None
        call = http_call(params, reply, (loop.time() - started) * 1000)
        calls.http.append(call)
        # any answer but a 4xx or a 503 (a 500, a gateway's 502 or 504, a redirect not
        # followed) may come after the message was taken: handed off, as Wire judges it
        calls.handed_off |= call.status is not None and may_have_taken(call.status)
        # a hop before the final answer reached the server (a 303 after the POST): sent
        calls.handed_off |= context.http_budget.reached
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
