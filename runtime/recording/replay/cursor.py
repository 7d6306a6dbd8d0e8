"""The cursor of one replayed attempt: its recorded exchanges, answered in order.

A request that differs from the recorded one at the same position (method or URL) is a
*divergence*: the cursor gives no answer, and it is not sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from runtime.recording.format import ExchangeRecord

__all__ = ["Cursor", "SentRequest"]


@dataclass(slots=True)
class SentRequest:
    """A request the replayed code made (whether or not the recording had it)."""

    method: str
    url: str
    body: bytes
    content_type: str
    served: bool


class Cursor:
    """Answers the requests of one replayed attempt from its recorded exchanges, in order."""

    def __init__(self, exchanges: Sequence[ExchangeRecord]) -> None:
        self.exchanges = exchanges
        self.sent: list[SentRequest] = []

    def next(self, method: str, url: str, body: bytes, content_type: str) -> ExchangeRecord | None:
        """The recorded exchange for this request, or None (a divergence: do not send)."""
        index = len(self.sent)
        expected = self.exchanges[index] if index < len(self.exchanges) else None
        served = (
            expected is not None
            and expected.request.method == method
            and _same_url(expected.request.url, url)
        )
        self.sent.append(SentRequest(method, url, body, content_type, served))
        return expected if served else None


def _same_url(recorded: str, sent: str) -> bool:
    if recorded == sent:
        return True
    a, b = urlsplit(recorded), urlsplit(sent)
    port = {"http": 80, "https": 443}
    return (a.scheme, a.hostname, a.port or port.get(a.scheme), a.path or "/", a.query) == (
        b.scheme,
        b.hostname,
        b.port or port.get(b.scheme),
        b.path or "/",
        b.query,
    )
