"""HMAC signatures of the webhooks this service sends (log stream batches, usage triggers), so
that a receiver can check a request came from here, unchanged, and recently.

The header is ``X-Phone-Actions-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is
HMAC-SHA256 under the receiver's secret of ``<t>.`` followed by the raw body (the scheme
Stripe popularised: the timestamp inside the MAC stops a replay outside the tolerance, and
``v1`` leaves room for another algorithm). docs/operations.md shows how to verify it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

__all__ = ["SIGNATURE_HEADER", "new_secret", "sign", "verify"]

SIGNATURE_HEADER = "X-Phone-Actions-Signature"
DEFAULT_TOLERANCE = 300.0  # seconds a signature stays acceptable to :func:`verify`


def new_secret() -> str:
    """A signing secret for one receiver: ``whsec_`` and 32 random bytes, URL-safe."""
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The header value for ``body`` sent now (or at ``timestamp``)."""
    moment = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256)
    return f"t={moment},v1={mac.hexdigest()}"


def verify(
    secret: str, body: bytes, header: str | None, *, tolerance: float = DEFAULT_TOLERANCE
) -> bool:
    """Whether ``header`` signs ``body`` under ``secret`` within ``tolerance`` seconds of now."""
    if not header:
        return False
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        moment = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - moment) > tolerance:
        return False
    expected = sign(secret, body, timestamp=moment).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
