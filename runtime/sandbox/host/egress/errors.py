"""The two refusals egress raises; both reach the tenant as ``ApiError(message)``."""

from __future__ import annotations

from runtime.sandbox.host.services import ApiRefused

__all__ = ["EgressDenied", "EgressFailed"]


class EgressDenied(ApiRefused):
    """The egress policy refused the request (URL, address, port, header, size or quota)."""


class EgressFailed(ApiRefused):
    """An allowed request failed: network, TLS, timeout, bad or oversize response."""
