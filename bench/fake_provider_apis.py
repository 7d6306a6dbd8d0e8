"""Fake provider APIs on 127.0.0.1 for benchmarks, in their own process.

``FakeProviders({"mitto": (200, body_bytes, content_type), ...})`` serves every provider's
canned success answer under ``/<name>/...``: point provider ``name``'s base URL at
``{url}/{name}``. The server only reads the request and answers, as fast as aiohttp can, so a
benchmark measures the client side.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
from multiprocessing.synchronize import Event

from aiohttp import web

Answer = tuple[int, bytes, str]


def _app(answers: dict[str, Answer]) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        status, body, content_type = answers[request.match_info["provider"]]
        return web.Response(status=status, body=body, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{provider}/{tail:.*}", answer)
    app.router.add_route("*", "/{provider}", answer)
    return app


def _serve(sock: socket.socket, answers: dict[str, Answer], ready: Event, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    ready.set()
    web.run_app(_app(answers), sock=sock, print=None, access_log=None, handle_signals=True)


class FakeProviders:
    """``with FakeProviders(answers) as url:`` serves until the block ends."""

    def __init__(self, answers: dict[str, Answer], cpu: int | None = None) -> None:
        self._answers = answers
        self._cpu = cpu

    def __enter__(self) -> str:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1024)
        port = self._sock.getsockname()[1]
        ctx = multiprocessing.get_context("fork")
        ready = ctx.Event()
        self._process = ctx.Process(
            target=_serve, args=(self._sock, self._answers, ready, self._cpu), daemon=True
        )
        self._process.start()
        ready.wait(10)
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_exc: object) -> None:
        self._process.terminate()
        self._process.join(5)
        self._sock.close()
