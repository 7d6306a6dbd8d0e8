"""A real HTTP server on 127.0.0.1 that records requests and answers as a test scripts it.

It runs ``http.server.ThreadingHTTPServer`` in a background thread, so provider code is
exercised through its real HTTP client, sockets included. Besides answering, it can hang after
reading a request (a read timeout *after* hand-off) or drop the connection without answering.
Nothing waits on sleeps: a hung handler blocks on a ``threading.Event`` that :meth:`stop`
sets, and :meth:`stop` also shuts every open connection down.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Body", "Handler", "RecordedRequest", "StubServer", "free_port"]

Body = bytes | str | dict[str, Any] | list[Any]
Handler = Callable[["RecordedRequest"], tuple[int, Body, dict[str, str]]]

# How often serve_forever checks for shutdown: bounds how long stop() takes (default 0.5 s).
_POLL_INTERVAL = 0.02


class _Headers(dict[str, str]):
    """Header names stored lower-case; lookups ignore case (``headers["Authorization"]``)."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class RecordedRequest:
    """One request as the server read it. ``form`` is filled for form-urlencoded bodies."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    form: dict[str, list[str]] = field(default_factory=dict)


def _encode(body: Body, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """Body bytes and headers; dicts and lists become JSON."""
    headers = dict(headers)
    names = {name.lower() for name in headers}
    if isinstance(body, dict | list):
        data = json.dumps(body).encode()
        default_type = "application/json"
    elif isinstance(body, str):
        data = body.encode()
        default_type = "text/plain; charset=utf-8"
    else:
        data = body
        default_type = "application/octet-stream"
    if "content-type" not in names and data:
        headers["Content-Type"] = default_type
    return data, headers


class _Server(ThreadingHTTPServer):
    # Tests open a hundred connections at once (a pool's worth): with the default backlog of
    # 5, the kernel drops the rest of the SYNs and the clients wait for their retransmission
    # (1 s, 3 s, 7 s... on a loaded machine, past a test's bound).
    request_queue_size = 1024


class StubServer:
    """Answers every request with the current behaviour: respond, respond_with, hang, close."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._connections: set[socket.socket] = set()
        self._behaviour: tuple[str, Any] = (
            "respond",
            (501, {"message": "StubServer: no answer configured"}, {}),
        )
        self._server = _Server(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"StubServer:{port}",
            daemon=True,
        )
        self._thread.start()
        self._stopped = False

    def respond(self, status: int, body: Body = b"", headers: dict[str, str] | None = None) -> None:
        """Answer every following request with ``status`` and ``body`` (dict/list as JSON)."""
        self._set("respond", (status, body, dict(headers or {})))

    def respond_with(self, handler: Handler) -> None:
        """Answer every following request with ``handler(request)``."""
        self._set("handler", handler)

    def hang(self) -> None:
        """Read and record every following request, then never answer (until :meth:`stop`)."""
        self._set("hang", None)

    def close_connection(self) -> None:
        """Read and record every following request, then close the socket without answering."""
        self._set("close", None)

    def stop(self) -> None:
        """Release hung handlers, close open connections and shut the server down."""
        if self._stopped:
            return
        self._stopped = True
        self._released.set()
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> StubServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _set(self, kind: str, value: Any) -> None:
        with self._lock:
            self._behaviour = (kind, value)

    def _record(self, request: RecordedRequest) -> tuple[str, Any]:
        with self._lock:
            self.requests.append(request)
            return self._behaviour

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


def _handler_class(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Twilio does: clients pool connections

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add ~40 ms to every answer.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stub._track(self.connection, add=True)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                stub._track(self.connection, add=False)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: request lines would only clutter test output."""

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline().strip():  # trailers
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _handle(self) -> None:
            body = self._read_body()
            parts = urlsplit(self.path)
            content_type = self.headers.get("Content-Type", "")
            form = (
                parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
                if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded"
                else {}
            )
            headers = _Headers({name.lower(): value for name, value in self.headers.items()})
            request = RecordedRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers=headers,
                body=body,
                form=form,
            )
            kind, value = stub._record(request)
            if kind == "hang":
                stub._released.wait()
                self.close_connection = True
                return
            if kind == "close":
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if kind == "handler":
                try:
                    status, answer, answer_headers = value(request)
                except Exception:
                    status, answer, answer_headers = 500, traceback.format_exc(), {}
            else:
                status, answer, answer_headers = value
            data, answer_headers = _encode(answer, answer_headers)
            self.send_response(status)
            for name, header_value in answer_headers.items():
                self.send_header(name, header_value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    return _Handler


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
