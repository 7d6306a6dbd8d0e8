"""Real faults for the store tests: a held SQLite write lock, a frozen TCP proxy, a loop probe."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def sqlite_write_lock(path: Path) -> Iterator[None]:
    """Another connection (on another thread) holds ``path``'s write lock (``BEGIN
    IMMEDIATE``) from entry until exit."""
    taken, release = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def hold() -> None:
        try:
            db = sqlite3.connect(path, isolation_level=None)
            db.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            failed.append(exc)
            taken.set()
            return
        taken.set()
        release.wait()
        db.execute("ROLLBACK")
        db.close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    taken.wait()
    if failed:
        raise failed[0]
    try:
        yield
    finally:
        release.set()
        holder.join()


class LoopLagProbe:
    """Ticks every 10 ms on the event loop and keeps the longest gap between ticks (and from
    the last tick to the exit): a blocked loop shows as a gap as long as the block."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None
        self._ticking = asyncio.Event()

    def _mark(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last)
        self._last = now

    async def _tick(self) -> None:
        self._last = time.perf_counter()
        self._ticking.set()
        while True:
            await asyncio.sleep(0.01)
            self._mark()

    async def __aenter__(self) -> LoopLagProbe:
        self._task = asyncio.create_task(self._tick())
        await self._ticking.wait()  # measuring before the code under test runs
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._mark()
        assert self._task is not None
        self._task.cancel()


class FrozenProxy:
    """A TCP proxy on 127.0.0.1 to ``target``, run on its own loop in a thread. While
    ``forwarding`` it passes bytes both ways; :meth:`freeze` stops that (connections stay open,
    bytes are swallowed), like a peer that went silent. Created frozen, it accepts and never
    even connects onwards. :meth:`close` drops every connection."""

    def __init__(self, target: tuple[str, int], *, forwarding: bool = True) -> None:
        self.target = target
        self.forwarding = forwarding
        self.answers_held = False  # hold_answers(): requests pass, answers are swallowed
        self.port = 0
        self.client_writes = 0  # chunks the client sent: one per round trip it waited for
        self._cut_after: bytes | None = None  # reset_after_answer's pattern (one shot)
        self.cuts = 0  # connections reset by it
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._ready.wait()

    def url(self, base: str) -> str:
        """``base`` (a PostgreSQL URL to 127.0.0.1:5432) pointed at this proxy."""
        host = f"127.0.0.1:{self.target[1]}"
        assert host in base, base
        return base.replace(host, f"127.0.0.1:{self.port}")

    def freeze(self) -> None:
        self.forwarding = False

    def hold_answers(self) -> None:
        """The server still gets what the client sends (and acts on it), but the client
        hears nothing back: the answer to a command that ran is lost."""
        self.answers_held = True

    def reset_after_answer(self, pattern: bytes) -> None:
        """Once: the client's next chunk holding ``pattern`` reaches the server, and when the
        server's answer comes back (the statement ran, and committed in autocommit), the
        client's connection is reset instead: the client never learns the outcome."""
        self._cut_after = pattern

    def heal(self) -> None:
        """The partition ends as the OS ends one: the connections that went silent are reset
        (what tcp_user_timeout does to a connection whose data stays unacknowledged) and new
        ones are forwarded again."""
        self.forwarding = True
        self.answers_held = False
        self._loop.call_soon_threadsafe(self._reset)

    def _reset(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def _serve(self) -> None:
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        writers: list[asyncio.StreamWriter] = []
        self._writers = writers

        async def pump(
            src: asyncio.StreamReader,
            dst: asyncio.StreamWriter,
            upstream: bool,
            cut: list[bool],
            client: asyncio.StreamWriter,
        ) -> None:
            with contextlib.suppress(ConnectionError):  # closed by close(): done
                while data := await src.read(65536):
                    if not self.forwarding or (self.answers_held and not upstream):
                        continue  # swallowed: the other side hears nothing
                    if not upstream and cut[0]:  # the answer to the cut statement: reset
                        self.cuts += 1
                        client.transport.abort()
                        dst.transport.abort()
                        return
                    pattern = self._cut_after
                    if upstream and pattern is not None and pattern in data:
                        self._cut_after, cut[0] = None, True
                    self.client_writes += upstream
                    dst.write(data)
                    await dst.drain()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            if not self.forwarding:
                return  # accepted, never forwarded
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            writers.append(up_writer)
            cut = [False]
            await asyncio.gather(
                pump(reader, up_writer, True, cut, writer),
                pump(up_reader, writer, False, cut, writer),
                return_exceptions=True,
            )

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()
        for w in writers:
            w.transport.abort()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
