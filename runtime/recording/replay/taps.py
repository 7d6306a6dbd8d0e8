"""Where a replay's HTTP is answered from the recording, never the network.

- :class:`ReplayObserver`: the :class:`~runtime.http.HttpObserver` a provider plugin's
  ``send(..., observer=...)`` gets; it answers each request from the cursor. An action's
  egress reaches it through :mod:`runtime.observing` (its shared transport takes no observer);
- :class:`ReplayTransport`: that egress transport; with :func:`fixed_resolver`, no name is
  looked up either.
"""

from __future__ import annotations

import httpx

from runtime.errors import ProviderError
from runtime.http import HttpRequest, HttpResponse
from runtime.observing import current_observer
from runtime.recording.format import body_bytes
from runtime.recording.replay.cursor import Cursor

__all__ = ["REPLAY_ADDRESS", "ReplayObserver", "ReplayTransport", "fixed_resolver"]

REPLAY_ADDRESS = "93.184.215.14"  # any public address: the replay transport never connects


class ReplayObserver:
    """The HTTP observer of one replayed attempt: answers from its cursor, never sends."""

    def __init__(self, cursor: Cursor, label: str) -> None:
        self.cursor = cursor
        self._cursor = cursor
        self._label = label

    def answer(self, request: HttpRequest) -> HttpResponse | None:
        content_type = next(
            (v for k, v in request.headers.items() if k.lower() == "content-type"), ""
        )
        exchange = self._cursor.next(request.method, request.url, request.body, content_type)
        if exchange is None:
            raise ProviderError(
                "replay_divergence",
                f"{request.method} {request.url} is not in the recording: not sent",
                retryable=False,
                handed_off=False,
            )
        if exchange.response is None:
            label = self._label
            if exchange.error == "connect":
                raise ProviderError(
                    "connection_error",
                    f"could not connect to {label}",
                    retryable=True,
                    handed_off=False,
                )
            code = exchange.error or "disconnected"
            raise ProviderError(
                code, f"{code} (as recorded) to {label}", retryable=True, handed_off=True
            )
        answer = exchange.response
        return HttpResponse(answer.status, dict(answer.headers), body_bytes(answer))

    def record(
        self,
        request: HttpRequest,
        response: HttpResponse | None,
        error: BaseException | None,
        seconds: float,
    ) -> None:
        return None


class ReplayTransport(httpx.AsyncBaseTransport):
    """The egress transport of a replay: answers from the current cursor, sends nothing."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        from runtime.recording.capture import original_url

        observer = current_observer()  # set by ActionReplayer around the invocation
        cursor = observer.cursor if isinstance(observer, ReplayObserver) else None
        url = original_url(request)
        body = await request.aread()
        content_type = request.headers.get("content-type", "")
        exchange = cursor.next(request.method, url, body, content_type) if cursor else None
        if exchange is None:
            raise httpx.ConnectError("not in the recording: not sent", request=request)
        if exchange.response is None:
            if exchange.error == "timeout":
                raise httpx.ReadTimeout("timed out (as recorded)", request=request)
            if exchange.error == "connect":
                raise httpx.ConnectError("could not connect (as recorded)", request=request)
            raise httpx.RemoteProtocolError("disconnected (as recorded)", request=request)
        answer = exchange.response
        headers = {k: v for k, v in answer.headers.items() if k not in HOP_HEADERS}
        return httpx.Response(answer.status, headers=headers, content=body_bytes(answer))


HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding", "connection"})


async def fixed_resolver(host: str, port: int) -> list[str]:
    return [REPLAY_ADDRESS]
