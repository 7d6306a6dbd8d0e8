"""Hand-off is a fact of the wire, not of an exception type.

One :class:`Wire` follows one ``api.http`` call through its hops and says, when the call fails,
whether the message may have reached the server: once a request was (even partly) written and
any answer other than a 4xx came back, or no answer came back at all, it may have. A refusal
before anything was written (policy, DNS, a refused connection) is not a hand-off. The
supervisor turns a hand-off into the invocation's ``handed_off`` flag, whatever the action
then does with the error, so the pipeline never sends a second code.

What was written is learnt from httpcore's ``trace`` extension (``send_request_headers``
started); a transport that does not report its steps (a test fake, a replay) is judged by
the exception it raises, and a timeout during its exchange counts as sent.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from runtime.sandbox.host.refusals import EgressFailed

__all__ = ["Wire", "failure", "may_have_taken"]

NOT_TAKEN = frozenset({503})
"""Non-4xx statuses that say the server did not process the request (Service Unavailable),
as the built-in providers judge them (``runtime.provider_kit.errors``): the action may retry
or fall back. Any other answer but a 4xx (a 500, a gateway's 502 or 504, a redirect not
followed) may come after the message was taken."""


def may_have_taken(status: int) -> bool:
    """Whether an answer with ``status`` may come after the server took the message."""
    return not (400 <= status < 500 or status in NOT_TAKEN)


class Wire:
    """What one call did on the wire so far (all hops)."""

    __slots__ = ("_exchanging", "_reached", "_status", "_traced", "_written")

    def __init__(self) -> None:
        self._reached = False  # an earlier hop was written and answered other than 4xx
        self.hop()

    def hop(self) -> None:
        """A new hop starts: nothing of it is on the wire yet."""
        self._exchanging = self._traced = self._written = False
        self._status: int | None = None

    def exchanging(self) -> None:
        """The hop's request goes to the transport now."""
        self._exchanging = True

    async def trace(self, event: str, _info: dict[str, Any]) -> None:
        """httpcore's ``trace`` extension: learn whether request bytes were written."""
        self._traced = True
        if event.endswith(".send_request_headers.started"):
            self._written = True

    def answered(self, status: int) -> None:
        self._status = status

    def followed(self) -> None:
        """The hop's answer was a redirect we follow: whatever happens next, it was sent."""
        if self._status is None or may_have_taken(self._status):
            self._reached = True
        self.hop()

    @property
    def reached(self) -> bool:
        """An earlier hop was written and answered other than 4xx (a redirect followed): the
        message may be at the server, whatever the last hop answers."""
        return self._reached

    def handed_off(self, *, otherwise: bool) -> bool:
        """Whether a failure now means the message may have reached the server;
        ``otherwise`` is the judgement by exception type, used when the wire cannot tell."""
        if self._reached:
            return True
        if self._status is not None:
            return may_have_taken(self._status)
        if self._written:
            return True
        if not self._exchanging or self._traced:
            return False  # refused before the transport, or it reported no request bytes
        return otherwise


def failure(exc: httpx.HTTPError, host: str) -> EgressFailed:
    """A tenant-safe message for a network error; ``maybe_sent`` by type (see :class:`Wire`).
    The details go to the host log, at the caller."""
    if isinstance(exc, httpx.ConnectTimeout):
        return EgressFailed(f"could not connect to {host} in time")
    if isinstance(exc, httpx.PoolTimeout):
        return EgressFailed(f"request to {host} timed out before it was sent")
    if isinstance(exc, httpx.TimeoutException):  # read or write: the server may have it
        return EgressFailed(f"request to {host} timed out", maybe_sent=True)
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        for _ in range(5):
            if isinstance(cause, ssl.SSLError):
                return EgressFailed(f"TLS handshake with {host} failed (certificate or protocol)")
            cause = cause.__cause__ or cause.__context__ if cause else None
        return EgressFailed(f"could not connect to {host}")
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return EgressFailed(
            f"connection to {host} broke off or the response was invalid", maybe_sent=True
        )
    return EgressFailed(f"request to {host} failed", maybe_sent=True)
