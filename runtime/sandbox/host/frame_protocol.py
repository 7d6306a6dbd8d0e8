"""The supervisor's end of a worker socket: an asyncio protocol reading length-prefixed frames.

It lives on the host side so that the shared frame code the zygote preloads imports no asyncio
(workers never run an event loop).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Final

from runtime.sandbox.shared.frames import (
    HEADER,
    MAX_FRAME_FROM_WORKER,
    ConnectionClosed,
    FrameTooLarge,
    ProtocolError,
    decode_body,
)

__all__ = ["FrameProtocol"]

MAX_QUEUED_FRAMES: Final = 8
"""A worker never has more than one frame outstanding; more is a flood."""


class FrameProtocol(asyncio.Protocol):
    """The supervisor's end of one worker socket.

    Frames are parsed as bytes arrive; the first error (oversize, malformed, flood, end of
    stream) sticks and is raised by every later :meth:`recv`, and reading stops, so a
    misbehaving worker costs at most one capped buffer.
    """

    def __init__(self, *, max_frame: int = MAX_FRAME_FROM_WORKER) -> None:
        self._max_frame = max_frame
        self._buf = bytearray()
        self._frames: deque[dict[str, Any]] = deque()
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._error is not None:
            return
        self._buf += data
        try:
            self._parse()
        except ProtocolError as exc:
            self._fail(exc)
        self._wake()

    def _parse(self) -> None:
        buf = self._buf
        offset = 0
        while len(buf) - offset >= HEADER.size:
            (size,) = HEADER.unpack_from(buf, offset)
            if size > self._max_frame:
                raise FrameTooLarge(f"frame of {size} bytes exceeds {self._max_frame}")
            end = offset + HEADER.size + size
            if len(buf) < end:
                break
            if len(self._frames) >= MAX_QUEUED_FRAMES:
                raise ProtocolError("worker flooded the socket with frames")
            self._frames.append(decode_body(memoryview(buf)[offset + HEADER.size : end]))
            offset = end
        if offset:
            del buf[:offset]

    def eof_received(self) -> bool | None:
        return False  # let the transport close; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionClosed("worker closed the connection"))
        self._wake()

    def _fail(self, exc: Exception) -> None:
        if self._error is None:
            self._error = exc
            self._buf = bytearray()
            if self._transport is not None and not isinstance(exc, ConnectionClosed):
                self._transport.pause_reading()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def recv(self) -> dict[str, Any]:
        """The next frame; raises the sticky error once the queue is drained."""
        while True:
            if self._frames:
                return self._frames.popleft()
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def send(self, frame: bytes) -> None:
        """Queue an already encoded frame (see :func:`encode_frame`)."""
        if self._transport is None or self._transport.is_closing():
            raise ConnectionClosed("worker connection is closed")
        self._transport.write(frame)

    @property
    def failed(self) -> bool:
        return self._error is not None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
