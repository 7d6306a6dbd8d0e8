"""The worker loop: run invocations of ONE tenant, ever, with ``api`` as an RPC stub.

Runs in a forked, isolated child of the zygote (namespaces and rlimits already applied; the
tenant's uid and seccomp follow when the supervisor binds it). Everything a tenant can reach
goes through :class:`SocketChannel`, so the supervisor sees and re-validates every ``api``
call. The worker binds to the tenant of its first invocation and exits if it is ever
asked to serve another one: the supervisor never does that, so such a request means a bug that
must not turn into state shared between tenants.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import os
import socket
from collections.abc import Callable
from typing import Any, Final

from runtime.sandbox.guest import oslimits
from runtime.sandbox.guest.eventdata import EventData
from runtime.sandbox.shared.contract import HANDLERS, SandboxLimits
from runtime.sandbox.shared.exits import EXIT_ISOLATION, EXIT_MEMORY, EXIT_PROTOCOL, EXIT_TENANT
from runtime.sandbox.shared.frames import (
    MAX_FRAME_FROM_WORKER,
    BlockingChannel,
    FrameTooLarge,
    ProtocolError,
    WorkerSources,
    decode_body,
    encode_frame,
    source_digest,
)
from runtime.sandbox.shared.masker import Masker, code_of_event, escape_controls

__all__ = [
    "EXIT_ISOLATION",
    "EXIT_MEMORY",
    "EXIT_PROTOCOL",
    "EXIT_TENANT",
    "SocketChannel",
    "refuse",
    "serve",
    "warm_up",
]

BindHook = Callable[[int | None], object]
"""Called once with the tenant's uid (or None) when the worker is bound; raises OSError."""
EXECUTOR: Final = "runtime.sandbox.guest.executor"
WARMUP_SOURCE: Final = """
import base64
import hashlib
import json

NAMES = {"acme": "Acme"}


def on_execute_send_phone_message(event, api):
    options = event.message_options
    client = event.get("client", {})
    digits = [int(c) for c in options["recipient"] if c.isdigit()]
    score = 0
    tags = []
    for i in range(20):
        score += digits[i % len(digits)] * (i % 7)
        if i % 10 == 0:
            tags.append("%s-%d" % (NAMES.get("acme", ""), score % 97) + f"{i:04d}")
    text = "%s is your %s code" % (options.code, client.get("name", "our app"))
    digest = hashlib.sha256(("%s|%s" % (options.recipient, text)).encode()).hexdigest()
    token = base64.b64encode(digest.encode()).decode()
    print("to", options.recipient, len(text))
    api.log.info(f"warm-up {options.code} score={score}")
    body = json.dumps({"tags": tags, "token": token[:8]}, sort_keys=True)
    return {"to": options.recipient, "n": [i * 2 for i in range(3)], "body": body}
"""
"""A trusted handler shaped like real ones (facade imports, loops, formatting, subscripts): the
compiler and guards it exercises are then warm before the first tenant's code arrives."""
WARMUP_EVENT: Final = {
    "message_options": {"recipient": "+14155550100", "text": "Your code is 0", "code": "0"}
}


def _api_error() -> type[Exception]:
    try:
        from runtime.sandbox.guest.guards import ApiError
    except ImportError:  # pragma: no cover - only while the language layer is missing
        return RuntimeError
    return ApiError


class SocketChannel:
    """``ApiChannel`` over the worker socket: one synchronous request/response per call."""

    def __init__(self, chan: BlockingChannel, invocation: int) -> None:
        self._chan = chan
        self._id = invocation
        self._error = _api_error()

    def call(self, op: str, params: dict[str, Any]) -> Any:
        """Send ``op`` to the supervisor and return its answer; ``ApiError`` on refusal."""
        problem = None
        try:
            frame = encode_frame(
                {"type": "rpc_request", "id": self._id, "op": op, "params": params},
                max_size=MAX_FRAME_FROM_WORKER,
            )
        except FrameTooLarge:
            problem = f"api.{op}: request too large"
        except (TypeError, ValueError):
            problem = f"api.{op}: arguments must be JSON data"
        if problem is not None:
            raise self._error(problem)  # fresh, outside the except block: no __context__
        reply = self._exchange(frame)
        if reply is None or reply["type"] != "rpc_response" or reply.get("id") != self._id:
            os._exit(EXIT_PROTOCOL)
        if reply.get("ok") is True:
            return reply.get("value")
        raise self._error(str(reply.get("error")))

    def _exchange(self, frame: bytes) -> Any:
        """Send one request and read its reply, or end the worker.

        Once a request is on the wire, the link is only usable if its reply is read whole: an
        exception in between (a MemoryError the tenant provoked, say) would let later calls
        read the wrong replies. So any failure here ends the worker, which the supervisor
        reports (``memory_limit`` for a MemoryError).
        """
        try:
            self._chan.send_frame(frame)
            return self._chan.recv()
        except MemoryError:
            os._exit(EXIT_MEMORY)
        except BaseException:
            os._exit(EXIT_PROTOCOL)


class _NullChannel:
    def call(self, op: str, params: dict[str, Any]) -> Any:
        return None


def warm_up(source: str = WARMUP_SOURCE) -> None:
    """Run a trusted handler once (never tenant code), so that lazily built state and
    copy-on-write page faults happen before a tenant is served: in the zygote the results are
    shared by every worker; in a spare worker they are off the critical path. ``source``: the
    zygote's page probe (:mod:`.prefault`) runs a minimal handler instead."""
    executor = importlib.import_module(EXECUTOR)
    limits = SandboxLimits.model_validate(SandboxLimits().model_dump())
    result = executor.invoke_source(
        source,
        name="warm-up",
        trigger="send-phone-message",
        event=WARMUP_EVENT,
        channel=_NullChannel(),
        limits=limits,
    )
    if result.outcome != "ok":
        raise RuntimeError(f"the warm-up handler failed: {result.error}")
    message = {"type": "result", "id": 0, "result": result.model_dump(mode="json")}
    decode_body(encode_frame(message, max_size=MAX_FRAME_FROM_WORKER)[4:])


class _Worker:
    def __init__(self, chan: BlockingChannel, *, probes: frozenset[str], on_bind: BindHook) -> None:
        self.chan = chan
        self.probes = probes
        self.on_bind = on_bind
        self.tenant: str | None = None
        self._limits: tuple[dict[str, Any], SandboxLimits] | None = None
        self.sources = WorkerSources()  # this tenant's, like everything in this process

    def bind(self, message: dict[str, Any]) -> None:
        """Bind to the message's tenant (first message: drop to its uid and load seccomp)."""
        tenant = message.get("tenant")
        if type(tenant) is not str:
            os._exit(EXIT_PROTOCOL)
        if self.tenant is None:
            uid = message.get("uid")
            if uid is not None and (type(uid) is not int or uid <= 0):
                os._exit(EXIT_PROTOCOL)
            try:
                self.on_bind(uid)
            except OSError:
                os._exit(EXIT_ISOLATION)  # never run tenant code half-isolated
            self.tenant = tenant
        elif tenant != self.tenant:
            os._exit(EXIT_TENANT)

    def limits(self, raw: Any) -> SandboxLimits:
        if self._limits is None or self._limits[0] != raw:
            self._limits = (raw, SandboxLimits.model_validate(raw))
        return self._limits[1]

    def invoke(self, message: dict[str, Any]) -> None:
        self.bind(message)
        invocation = message["id"]
        limits = self.limits(message["limits"])
        oslimits.start_invocation(limits.cpu_seconds, limits.memory_bytes)
        payload = _run(message, limits, SocketChannel(self.chan, invocation), self.sources)
        retire = oslimits.cpu_budget_left() < limits.cpu_seconds + 1
        reply = {"type": "result", "id": invocation, "result": payload, "retire": retire}
        try:
            self.chan.send(reply)
        except FrameTooLarge:
            reply["result"] = {"outcome": "output_limit", "error": "result frame too large"}
            self.chan.send(reply)
        except (TypeError, ValueError):
            reply["result"] = {"outcome": "runtime_error", "error": "result is not JSON data"}
            self.chan.send(reply)

    def probe(self, message: dict[str, Any]) -> None:
        """Test pools only: run a trusted ``module:function`` the zygote imported."""
        module, _, function = str(message["target"]).partition(":")
        if module not in self.probes:
            os._exit(EXIT_PROTOCOL)
        self.bind(message)
        reply: dict[str, Any] = {"type": "probe_result", "id": message["id"], "ok": True}
        try:
            reply["value"] = getattr(importlib.import_module(module), function)(*message["args"])
        except Exception as exc:
            reply = {**reply, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        self.chan.send(reply)


def _source(message: dict[str, Any], sources: WorkerSources) -> tuple[str | bytes, str]:
    """The invocation's source and its digest: sent along (and then kept), or kept before.

    A digest that does not match the source sent, or one this worker never kept, means the
    supervisor's mirror is wrong: exit rather than run something else.
    """
    source: str | bytes
    if "source_b64" in message:
        source = base64.b64decode(message["source_b64"])
    elif "source" in message:
        source = message["source"]
    else:
        kept = sources.get(message["digest"])
        if kept is None:
            os._exit(EXIT_PROTOCOL)
        return kept, message["digest"]
    if type(source) is str:
        digest = source_digest(source.encode("utf-8", "surrogatepass"))
    elif type(source) is bytes:
        digest = source_digest(source)
    else:
        raise TypeError("source must be a string")
    claimed = message.get("digest", digest)
    if claimed != digest:
        os._exit(EXIT_PROTOCOL)
    sources.remember(digest, source)
    return source, digest


def _run(
    message: dict[str, Any], limits: SandboxLimits, channel: SocketChannel, sources: WorkerSources
) -> Any:
    trigger = message["trigger"]
    if trigger not in HANDLERS:
        return {"outcome": "runtime_error", "error": f"unknown trigger {trigger!r}"}
    source, digest = _source(message, sources)
    try:
        executor = importlib.import_module(EXECUTOR)
    except Exception as exc:
        return {"outcome": "runtime_error", "error": f"sandbox executor unavailable: {exc}"}
    # What to mask, read before tenant code runs (it gets the event read-only anyway)
    secrets = message["event"].get("secrets")
    masked = (
        [value for value in secrets.values() if type(value) is str]
        if type(secrets) is dict
        else [],
        code_of_event(message["event"]),
    )
    try:
        result = executor.invoke_source(
            source,
            name=str(message["name"]),
            trigger=trigger,
            event=EventData.adopt(message["event"]),  # decoded from this frame: ours alone
            channel=channel,
            limits=limits,
            digest=digest,
            check_only=message.get("check") is True,
        )
        return _masked(result, *masked).model_dump(mode="json")
    except MemoryError:
        return {"outcome": "memory_limit", "error": "MemoryError"}
    except Exception as exc:  # the executor reports tenant errors itself; this is ours
        return {"outcome": "runtime_error", "error": f"sandbox error: {type(exc).__name__}"}


def _masked(result: Any, secrets: list[str], code: str | None) -> Any:
    """``result`` with the secrets and the code masked out of everything the tenant's code
    produced (its result, logs, error, traceback, compile errors and notification), and the
    texts' control characters escaped (:mod:`runtime.sandbox.shared.masker`): here, on the
    tenant's CPU time. A 256 KiB result of short strings takes ~100 ms to mask, and secrets
    chosen for it make each KiB cost milliseconds: on the supervisor's event loop that would
    delay every tenant. The supervisor masks what it builds itself (HTTP records)."""
    if (
        result.result is None
        and not result.logs
        and not result.error
        and not result.traceback
        and not result.compile_errors
        and not result.notification
    ):
        return result
    masker = Masker(secrets, code, exact=True)  # on the tenant's CPU: every set, exactly
    cut = masker.cut_line  # fields capped in length: a secret may be cut in two at the end
    return result.model_copy(
        update={
            "result": masker.data(result.result),
            "logs": [cut(line) for line in result.logs],
            "error": cut(result.error) if result.error else result.error,
            "traceback": [cut(line) for line in result.traceback],
            "compile_errors": [
                issue.model_copy(update={"message": masker.line(issue.message)})
                for issue in result.compile_errors
            ],
            "notification": (
                {escape_controls(k): cut(v) for k, v in result.notification.items()}
                if result.notification
                else result.notification
            ),
        }
    )


def _no_isolation(uid: int | None) -> object:
    return None


def serve(
    sock: socket.socket,
    *,
    seccomp: bool,
    detail: str,
    probes: frozenset[str] = frozenset(),
    on_bind: BindHook = _no_isolation,
    warm: bool = True,
) -> None:
    """Say ``ready``, then serve frames until the supervisor closes the socket.

    ``seccomp`` says whether ``on_bind`` will load the filter; ``on_bind(uid)`` runs once, at
    the first ``bind``, ``invoke`` or ``probe`` frame, before anything of the tenant's.
    ``warm``: run :func:`warm_up` before ``ready`` (a spare forked ahead of demand). A worker
    someone is waiting for skips it: that would only delay its first invocation, and under
    churn its CPU (about 1 ms) is better spent on the next worker.
    """
    chan = BlockingChannel(sock)
    if warm:
        with contextlib.suppress(Exception):  # e.g. no executor: invocations will say so
            warm_up()
    chan.send({"type": "ready", "seccomp": seccomp, "detail": detail})
    worker = _Worker(chan, probes=probes, on_bind=on_bind)
    while True:
        try:
            message = chan.recv()
        except MemoryError:
            os._exit(EXIT_MEMORY)
        except (ProtocolError, OSError):
            os._exit(EXIT_PROTOCOL)
        if message is None:
            return
        kind = message["type"]
        try:
            if kind == "bind":
                worker.bind(message)
            elif kind == "invoke":
                worker.invoke(message)
            elif kind == "probe":
                worker.probe(message)
            else:
                os._exit(EXIT_PROTOCOL)
        except MemoryError:
            os._exit(EXIT_MEMORY)
        except (KeyError, TypeError, ValueError, ProtocolError, OSError):
            os._exit(EXIT_PROTOCOL)


def refuse(sock: socket.socket, detail: str) -> None:
    """Seccomp was required but could not be loaded: say so and run nothing."""
    BlockingChannel(sock).send(
        {"type": "ready", "seccomp": False, "refused": True, "detail": detail}
    )
