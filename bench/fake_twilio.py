"""A fake Twilio Messages API on 127.0.0.1 for benchmarks, run in its own process.

It answers every POST with Twilio's 201 message JSON, as fast as aiohttp can, so that what a
benchmark measures is the client side: the bare SDK against the pipeline.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
from multiprocessing.synchronize import Event

from aiohttp import web

MESSAGE = json.dumps(
    {
        "sid": "SM" + "a" * 32,
        "status": "queued",
        "to": "+14155552671",
        "from": "+15017122661",
        "body": "redacted",
        "account_sid": "AC" + "0" * 32,
        "num_segments": "1",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "error_code": None,
        "error_message": None,
        "uri": "/2010-04-01/Accounts/AC/Messages/SM.json",
    }
)


async def _created(_request: web.Request) -> web.Response:
    await _request.read()
    return web.Response(status=201, text=MESSAGE, content_type="application/json")


def _serve(sock: socket.socket, ready: Event, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    app = web.Application()
    app.router.add_post("/{tail:.*}", _created)
    ready.set()
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True)


class FakeTwilio:
    """``with FakeTwilio() as url:`` serves until the block ends (pinned to ``cpu`` if given)."""

    def __init__(self, cpu: int | None = None) -> None:
        self._cpu = cpu

    def __enter__(self) -> str:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1024)
        port = self._sock.getsockname()[1]
        ctx = multiprocessing.get_context("fork")
        ready = ctx.Event()
        self._process = ctx.Process(target=_serve, args=(self._sock, ready, self._cpu), daemon=True)
        self._process.start()
        ready.wait(10)
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_exc: object) -> None:
        self._process.terminate()
        self._process.join(5)
        self._sock.close()
