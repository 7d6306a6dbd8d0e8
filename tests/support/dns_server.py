"""A tiny DNS server on 127.0.0.1 (UDP) for egress tests: answers some names, drops others.

``answers`` maps a name to the IPv4 address its A query gets (AAAA queries get an empty
NOERROR answer). A name for which ``silent(name)`` is true is read, counted and dropped: the
server never answers it, like an authoritative server that does not reply. Runs in a thread;
:meth:`stop` wakes it with a datagram of its own (no sleeps, no polling).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv4Address
from types import TracebackType

__all__ = ["DnsServer"]

_A, _AAAA = 1, 28
_STOP = b"stop"


class DnsServer:
    def __init__(
        self,
        answers: dict[str, str] | None = None,
        silent: Callable[[str], bool] = lambda _name: False,
    ) -> None:
        self.answers = dict(answers or {})
        self.silent = silent
        self.queried: Counter[str] = Counter()  # queries read, by name (answered or not)
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, name="DnsServer", daemon=True)
        self._thread.start()

    def names(self) -> set[str]:
        with self._lock:
            return set(self.queried)

    def stop(self) -> None:
        if self._thread.is_alive():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as waker:
                waker.sendto(_STOP, ("127.0.0.1", self.port))
            self._thread.join()
        self._sock.close()

    def __enter__(self) -> DnsServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self) -> None:
        while True:
            data, peer = self._sock.recvfrom(4096)
            if data == _STOP:
                return
            parsed = _question(data)
            if parsed is None:
                continue
            name, qtype, end = parsed
            with self._lock:
                self.queried[name] += 1
            if self.silent(name):
                continue  # read and dropped: the asker waits until its own timeout
            self._sock.sendto(self._answer(data, name, qtype, end), peer)

    def _answer(self, query: bytes, name: str, qtype: int, end: int) -> bytes:
        address = self.answers.get(name)
        records = b""
        count = 0
        if address is not None and qtype == _A:
            rdata = IPv4Address(address).packed
            records = struct.pack("!HHHIH", 0xC00C, _A, 1, 60, len(rdata)) + rdata
            count = 1
        rcode = 0 if address is not None else 3  # NXDOMAIN for names we do not know
        header = struct.pack("!HHHHHH", struct.unpack("!H", query[:2])[0], 0x8180 | rcode, 1,
                             count, 0, 0)  # fmt: skip
        return header + query[12:end] + records


def _question(data: bytes) -> tuple[str, int, int] | None:
    """(name, qtype, end of the question section) of a query, None if malformed."""
    labels: list[str] = []
    at = 12
    try:
        while data[at]:
            length = data[at]
            labels.append(data[at + 1 : at + 1 + length].decode("ascii").lower())
            at += 1 + length
        qtype = struct.unpack("!H", data[at + 1 : at + 3])[0]
    except (IndexError, UnicodeDecodeError, struct.error):
        return None
    return ".".join(labels), qtype, at + 5
