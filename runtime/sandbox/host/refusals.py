"""The refusals of the sandbox's host services; each reaches the tenant as ``ApiError(message)``.

Their own module so that services, egress, cache and the pool all import them from one place
that imports nothing of theirs (they used to form a cycle through ``services``)::

    Exception
    └── ApiRefused            refusal shown to the tenant as ``ApiError(message)``
        ├── EgressDenied      egress policy said no: URL, address, port, header, size, quota
        ├── EgressFailed      allowed but failed: network, TLS, timeout, response cap
        └── CacheRefused      a cache key that is not a string

A message names only what the tenant itself sent: never host internals, never other tenants'
data.
"""

from __future__ import annotations

__all__ = ["ApiRefused", "CacheRefused", "EgressDenied", "EgressFailed"]

_MAX_MESSAGE = 1024


class ApiRefused(Exception):
    """A refused ``api`` call; ``message`` is safe to show the tenant (it names only its input).

    ``maybe_sent`` is true when an HTTP request failed after it may have reached the server
    (a read timeout, a broken connection): the supervisor then counts the message as handed
    off, so that the pipeline never sends a second code.
    """

    def __init__(self, message: str, *, maybe_sent: bool = False) -> None:
        self.message = message[:_MAX_MESSAGE]
        self.maybe_sent = maybe_sent
        super().__init__(self.message)


class EgressDenied(ApiRefused):
    """The egress policy refused the request (URL, address, port, header, size or quota)."""


class EgressFailed(ApiRefused):
    """An allowed request failed: network, TLS, timeout, bad or oversize response."""


class CacheRefused(ApiRefused):
    """A cache call the supervisor cannot serve at all (a key that is not a string)."""
