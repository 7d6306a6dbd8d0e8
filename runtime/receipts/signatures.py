"""The providers' signatures on their callbacks: a receipt without a valid one is refused.

- Twilio signs every webhook with ``X-Twilio-Signature``: HMAC-SHA1 under the account's auth
  token of the full URL it called followed by the POST fields sorted by name; checked with
  the twilio SDK's :class:`~twilio.request_validator.RequestValidator`.
- Vonage signs SMS API webhooks (delivery receipts included) when the account has signed
  webhooks on: ``sig`` is a digest of the other fields sorted by name, written
  ``&name=value`` (``&`` and ``=`` in values replaced by ``_``), keyed by the account's
  signature secret. The dashboard picks the algorithm: the "MD5 hash" (the secret appended,
  then MD5) or an HMAC with MD5, SHA-1, SHA-256 or SHA-512; each is accepted, told apart by
  the digest's length. ``timestamp`` must be within five minutes, so an old receipt cannot be
  replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from twilio.request_validator import RequestValidator

__all__ = ["twilio_signature_valid", "vonage_signature", "vonage_signature_valid"]

VONAGE_TOLERANCE = 300.0  # seconds between Vonage's timestamp and this node's clock
_HMACS = {40: ("sha1",), 64: ("sha256",), 128: ("sha512",), 32: ("md5hash", "md5")}


def twilio_signature_valid(
    token: str, url: str, fields: Mapping[str, str], signature: str | None
) -> bool:
    """Whether ``signature`` is Twilio's for a POST of ``fields`` to ``url``."""
    if not signature or not token:
        return False
    return bool(RequestValidator(token).validate(url, dict(fields), signature))


def vonage_signature(fields: Mapping[str, str], secret: str, method: str) -> str:
    """Vonage's ``sig`` of ``fields`` (without ``sig``) under ``secret`` with ``method``
    (``md5hash``, ``md5``, ``sha1``, ``sha256``, ``sha512``), lower-case hex."""
    text = "".join(
        f"&{name}={str(value).replace('&', '_').replace('=', '_')}"
        for name, value in sorted(fields.items())
        if name != "sig"
    ).encode()
    if method == "md5hash":
        return hashlib.md5(text + secret.encode()).hexdigest()
    return hmac.new(secret.encode(), text, method).hexdigest()


def vonage_signature_valid(
    fields: Mapping[str, str], secret: str, *, now: float | None = None
) -> bool:
    """Whether ``fields`` carry a ``sig`` made with ``secret`` and a recent ``timestamp``."""
    signature = str(fields.get("sig") or "").lower()
    if not signature or not secret:
        return False
    try:
        moment = float(fields.get("timestamp") or "")
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - moment) > VONAGE_TOLERANCE:
        return False
    return any(
        hmac.compare_digest(vonage_signature(fields, secret, method), signature)
        for method in _HMACS.get(len(signature), ())
    )
