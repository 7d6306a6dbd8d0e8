"""Framing between supervisor and worker, and how the supervisor treats a lying worker.

The last group plays a *compromised worker* over a real socketpair: after tenant code has run,
the worker is the adversary, and these are the frames a real one would never send.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from runtime.sandbox.guest.oslimits import WorkerLimits
from runtime.sandbox.host.context import InvocationContext
from runtime.sandbox.host.frame_protocol import FrameProtocol
from runtime.sandbox.host.invocation import run_invocation
from runtime.sandbox.host.refusals import ApiRefused
from runtime.sandbox.host.zygote_client import Worker
from runtime.sandbox.shared.contract import SandboxLimits
from runtime.sandbox.shared.frames import (
    MAX_FRAME_FROM_WORKER,
    BlockingChannel,
    ConnectionClosed,
    FrameTooLarge,
    ProtocolError,
    checked_result,
    decode_body,
    encode_frame,
    http_call,
)


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


# ------------------------------------------------------------------ encoding


def test_round_trip_and_big_integers() -> None:
    message = {"type": "result", "id": 1, "result": {"n": 2**63 - 1, "s": "é\u2028"}}
    data = encode_frame(message, max_size=1024)
    assert struct.unpack(">I", data[:4])[0] == len(data) - 4
    decoded = decode_body(data[4:])
    assert decoded["result"] == {"n": 2**63 - 1, "s": "é\u2028"}
    with pytest.raises(TypeError):  # beyond 64 bits: refused, never read differently
        encode_frame({"type": "result", "id": 1, "result": 10**30}, max_size=1024)


def test_encode_refuses_oversize_and_non_json() -> None:
    with pytest.raises(FrameTooLarge):
        encode_frame({"type": "x", "blob": "a" * 100}, max_size=50)
    with pytest.raises(TypeError):
        encode_frame({"type": "x", "obj": object()}, max_size=1024)
    with pytest.raises(TypeError):
        encode_frame({"type": "x", "n": 10**30}, max_size=1024)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"id": 1}', b'{"type": 3}', b'"result"', b"[NaN]", b"\xff\xfe"],
)
def test_decode_refuses_malformed(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_body(body)


# ------------------------------------------------------------------ the worker's blocking end


def test_blocking_channel_frames_over_a_socketpair() -> None:
    left, right = socket.socketpair()
    with left, right:
        a, b = BlockingChannel(left), BlockingChannel(right)
        a.send({"type": "one", "n": 1})
        a.send({"type": "two", "text": "x" * 200_000})  # larger than one recv
        assert b.recv() == {"type": "one", "n": 1}
        assert b.recv() == {"type": "two", "text": "x" * 200_000}
        left.shutdown(socket.SHUT_WR)
        assert b.recv() is None  # clean end between frames


def test_blocking_channel_caps_and_truncation() -> None:
    left, right = socket.socketpair()
    with left, right:
        reader = BlockingChannel(right, max_recv=100)
        left.sendall(struct.pack(">I", 101))
        with pytest.raises(FrameTooLarge):
            reader.recv()
        with pytest.raises(FrameTooLarge):
            BlockingChannel(left).send({"type": "x", "blob": "a" * MAX_FRAME_FROM_WORKER})
    left, right = socket.socketpair()
    with right:
        left.sendall(struct.pack(">I", 10) + b'{"ty')
        left.close()
        with pytest.raises(ConnectionClosed):
            BlockingChannel(right).recv()


# ------------------------------------------------------------------ the supervisor's asyncio end


@pytest.fixture
async def wire() -> AsyncIterator[tuple[socket.socket, FrameProtocol]]:
    ours, theirs = socket.socketpair()
    proto = FrameProtocol(max_frame=1024)
    await asyncio.get_running_loop().create_unix_connection(lambda: proto, sock=ours)
    yield theirs, proto
    proto.close()
    theirs.close()


async def test_frame_protocol_reassembles_byte_by_byte(
    wire: tuple[socket.socket, FrameProtocol],
) -> None:
    _, proto = wire
    data = frame(b'{"type":"a"}') + frame(b'{"type":"b","x":[1,2]}')
    for i in range(len(data)):
        proto.data_received(data[i : i + 1])
    assert await proto.recv() == {"type": "a"}
    assert await proto.recv() == {"type": "b", "x": [1, 2]}


async def test_frame_protocol_over_socket_then_eof(
    wire: tuple[socket.socket, FrameProtocol],
) -> None:
    theirs, proto = wire
    theirs.sendall(frame(b'{"type":"hello"}'))
    assert await proto.recv() == {"type": "hello"}
    theirs.close()
    with pytest.raises(ConnectionClosed):
        await proto.recv()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (struct.pack(">I", 1025), FrameTooLarge),  # refused from the header alone
        (frame(b"{broken"), ProtocolError),
        (frame(b'{"type":"x"}') * 20, ProtocolError),  # flood: one frame at a time is the rule
    ],
)
async def test_frame_protocol_errors_are_sticky(
    wire: tuple[socket.socket, FrameProtocol], data: bytes, error: type[Exception]
) -> None:
    theirs, proto = wire
    theirs.sendall(data)
    frames = []
    with pytest.raises(error):  # noqa: PT012 - the well-formed frames come first
        while True:
            frames.append(await proto.recv())
    assert proto.failed
    assert len(frames) <= 8
    with pytest.raises(error):
        await proto.recv()


# ------------------------------------------------------------------ re-validating results


def test_checked_result_caps_and_drops_the_workers_claims() -> None:
    limits = SandboxLimits(max_log_lines=3, max_log_line_bytes=10, max_result_bytes=50)
    raw = {
        "outcome": "ok",
        "result": {"a": 1},
        "logs": ["0123456789abcdef", "é" * 20, "x", "y", "z"],
        "handed_off": True,
        "http": [{"method": "GET", "url": "https://x", "status": 200, "duration_ms": 1}],
        "error": "e" * 10_000,
        "duration_ms": 1e9,
    }
    result = checked_result(raw, limits, [], False)
    assert result.handed_off is False
    assert result.http == []
    assert result.logs == ["0123456…", "ééé…", "x"]
    assert all(len(line.encode()) <= 10 for line in result.logs)
    assert result.error is not None
    assert len(result.error.encode()) <= 4096
    assert result.duration_ms == 0.0
    too_big = checked_result({**raw, "result": "r" * 100}, limits, [], False)
    assert (too_big.outcome, too_big.result) == ("output_limit", None)


@pytest.mark.parametrize(
    "raw", [None, [], {"outcome": "pwned"}, {"outcome": "ok", "logs": "not a list"}]
)
def test_checked_result_refuses_invalid(raw: Any) -> None:
    with pytest.raises(ProtocolError):
        checked_result(raw, SandboxLimits(), [], False)


def test_http_call_keeps_no_credentials() -> None:
    params = {"method": "post", "url": "https://user:pw@api.example.com:8443/v1/send?key=SECRET"}
    call = http_call(params, {"ok": True, "value": {"status": 201}}, 3.5)
    assert (call.method, call.status) == ("POST", 201)
    assert call.url == "https://api.example.com:8443/v1/send?…"
    refused = http_call({"url": 7}, {"ok": False, "error": "denied"}, 1.0)
    assert (refused.url, refused.status, refused.error) == ("?", None, "denied")


def test_a_huge_url_is_read_only_as_far_as_its_record_shows() -> None:
    """A frame may hold a URL of ~2 MB: the supervisor's record reads only its start (parsing
    all of it, twice a call, cost the loop 10-25 ms a call), and never shows its query."""
    url = "https://api.example.com/" + "a" * 2_000_000 + "?key=SECRET"
    call = http_call({"method": "get", "url": url}, {"ok": False, "error": "refused"}, 1.0)
    assert call.url.startswith("https://api.example.com/aaa")
    assert len(call.url) <= 2049
    assert "SECRET" not in call.url


# ------------------------------------------------------------------ a compromised worker


@dataclass
class Recorder:
    calls: list[tuple[str, str, dict[str, Any], float]] = field(default_factory=list)

    async def handle(self, context: InvocationContext, op: str, params: dict[str, Any]) -> Any:
        self.calls.append((context.tenant, op, params, context.deadline))
        if params.get("refuse"):
            raise ApiRefused("no thanks")
        return {"status": params.get("status", 200), "headers": {}, "text": "", "json": None}


@pytest.fixture
async def fake_worker() -> AsyncIterator[tuple[Worker, FrameProtocol]]:
    """A Worker handle whose far end is the test (pidfd -1: nothing to signal)."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    worker = Worker(
        pid=0,
        pidfd=-1,
        conn=FrameProtocol(),
        limits=WorkerLimits(1 << 28, 5),
        exited=loop.create_future(),
    )
    peer = FrameProtocol(max_frame=1 << 24)
    await loop.create_unix_connection(lambda: worker.conn, sock=ours)
    await loop.create_unix_connection(lambda: peer, sock=theirs)
    yield worker, peer
    worker.conn.close()
    peer.close()


async def play(
    worker: Worker,
    peer: FrameProtocol,
    frames: list[bytes],
    *,
    services: Recorder | None = None,
) -> Any:
    """Run one invocation against ``worker`` while the test sends ``frames`` as the worker."""
    task = asyncio.create_task(
        run_invocation(
            worker,
            services or Recorder(),
            InvocationContext.start("t", "send-phone-message", SandboxLimits(timeout=2.0)),
            invocation=7,
            frame=encode_frame({"type": "invoke", "id": 7}, max_size=1024),
        )
    )
    assert (await peer.recv())["type"] == "invoke"
    for data in frames:
        peer.send(data)
        if b'"rpc_request"' in data:
            try:
                assert (await peer.recv())["type"] == "rpc_response"
            except ConnectionClosed:  # the supervisor refused the frame and hung up
                break
    return await task


def result_frame(**result: Any) -> bytes:
    return frame(orjson.dumps({"type": "result", "id": 7, "result": {"outcome": "ok", **result}}))


async def test_rpc_round_trip_and_handed_off_from_the_supervisors_view(
    fake_worker: tuple[Worker, FrameProtocol],
) -> None:
    worker, peer = fake_worker
    services = Recorder()
    rpc = {"type": "rpc_request", "id": 7, "op": "http.request"}
    frames = [
        frame(
            orjson.dumps({**rpc, "params": {"method": "POST", "url": "https://a/x", "status": 503}})
        ),
        frame(orjson.dumps({**rpc, "params": {"method": "GET", "url": "https://b/", "refuse": 1}})),
        result_frame(handed_off=True, http=[]),  # a lie the supervisor does not believe
    ]
    result, healthy = await play(worker, peer, frames, services=services)
    assert (result.outcome, healthy) == ("ok", True)
    assert [c[0] for c in services.calls] == ["t", "t"]  # the tenant comes from the pool
    assert [(c.status, c.error) for c in result.http] == [(503, None), (None, "no thanks")]
    assert result.handed_off is False


@pytest.mark.parametrize(
    ("status", "handed_off"),
    [
        *[(400, False), (401, False), (404, False), (429, False), (503, False), (200, True)],
        *[(202, True), (300, True), (302, True), (500, True), (502, True), (504, True)],
    ],
)
async def test_any_answer_but_a_4xx_or_a_503_is_handed_off(
    fake_worker: tuple[Worker, FrameProtocol], status: int, handed_off: bool
) -> None:
    """A 500, a gateway's 502 or 504, or a redirect the egress did not follow may come after
    the message was taken: never a retry or a fallback then. A 503 says it was not processed,
    as the built-in providers read it."""
    worker, peer = fake_worker
    rpc = {"type": "rpc_request", "id": 7, "op": "http.request"}
    params = {"method": "POST", "url": "https://a/x", "status": status}
    frames = [frame(orjson.dumps({**rpc, "params": params})), result_frame(http=[])]
    result, healthy = await play(worker, peer, frames, services=Recorder())
    assert (result.outcome, healthy) == ("ok", True)
    assert [c.status for c in result.http] == [status]
    assert result.handed_off is handed_off


@pytest.mark.parametrize(
    ("data", "outcome"),
    [
        (struct.pack(">I", MAX_FRAME_FROM_WORKER + 1), "output_limit"),
        (frame(b"\x00garbage"), "runtime_error"),
        (frame(b'{"type":"rpc_request","id":8,"op":"cache.get","params":{}}'), "runtime_error"),
        (frame(b'{"type":"rpc_request","id":7,"op":"cache.get","params":[]}'), "runtime_error"),
        (frame(b'{"type":"probe_result","id":7}'), "runtime_error"),
        (frame(b'{"type":"result","id":7,"result":{"outcome":"hacked"}}'), "runtime_error"),
    ],
)
async def test_violations_end_the_invocation(
    fake_worker: tuple[Worker, FrameProtocol], data: bytes, outcome: str
) -> None:
    worker, peer = fake_worker
    result, healthy = await play(worker, peer, [data])
    assert (result.outcome, healthy) == (outcome, False)
    if outcome == "runtime_error":
        assert result.error == "worker protocol violation"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (signal.SIGXCPU, "timeout"),
        (signal.SIGKILL, "worker_killed"),  # by someone else: our own kill is the deadline's
        (signal.SIGTERM, "worker_killed"),
        (signal.SIGSEGV, "runtime_error"),
        (-1, "memory_limit"),  # SIGKILL by the cgroup's OOM killer (the zygote's oom flag)
    ],
)
async def test_death_is_judged_by_exit_status(
    fake_worker: tuple[Worker, FrameProtocol], status: int, outcome: str
) -> None:
    worker, peer = fake_worker
    if status == -1:
        status, worker.oom_killed = signal.SIGKILL, True
    worker.exited.set_result(status)  # raw wait status of a signal death is the signal number
    peer.close()
    result, healthy = await run_invocation(
        worker,
        Recorder(),
        InvocationContext.start("t", "send-phone-message", SandboxLimits(timeout=2.0)),
        invocation=7,
        frame=encode_frame({"type": "invoke", "id": 7}, max_size=1024),
    )
    assert (result.outcome, healthy) == (outcome, False)
    assert os.WIFSIGNALED(status)
