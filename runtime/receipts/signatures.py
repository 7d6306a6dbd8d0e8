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
- Plivo signs with ``X-Plivo-Signature-V3`` and ``X-Plivo-Signature-V3-Nonce``
  (:func:`plivo_signature_valid`).
- Telesign signs its callbacks with ``Authorization: TSA <customer id>:<signature>``
  (:func:`telesign_signature_valid`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from plivo.utils.signature_v3 import validate_v3_signature
from twilio.request_validator import RequestValidator

__all__ = [
    "plivo_signature_valid",
    "telesign_signature",
    "telesign_signature_valid",
    "twilio_signature_valid",
    "vonage_signature",
    "vonage_signature_valid",
]

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


def plivo_signature_valid(
    token: str, url: str, fields: Mapping[str, str], nonce: str | None, signature: str | None
) -> bool:
    """Whether ``signature`` (``X-Plivo-Signature-V3``, possibly several comma-separated) is
    Plivo's for a POST of ``fields`` to ``url`` with ``nonce`` (``X-Plivo-Signature-V3-Nonce``):
    HMAC-SHA256 under the auth token of the URL, the sorted fields and the nonce, checked with
    Plivo's SDK (``plivo.utils.signature_v3``)."""
    if not token or not nonce or not signature:
        return False
    try:
        return bool(validate_v3_signature("POST", url, nonce, token, signature, dict(fields)))
    except Exception:  # the SDK's argument validators: a malformed header is a bad signature
        return False


def telesign_signature(api_key: str, body: bytes) -> str:
    """Telesign's callback signature: base64 of HMAC-SHA256 of the raw body under the
    base64-decoded API key (``Authorization: TSA <customer id>:<signature>``)."""
    key = base64.b64decode(api_key)
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


def telesign_signature_valid(
    customer_id: str, api_key: str, body: bytes, authorization: str | None
) -> bool:
    """Whether ``authorization`` is ``TSA <customer_id>:<signature of body>``."""
    if not authorization or not api_key or not authorization.startswith("TSA "):
        return False
    who, _, signature = authorization[4:].strip().rpartition(":")
    try:
        expected = telesign_signature(api_key, body)
    except (binascii.Error, ValueError):  # an API key that is not base64
        return False
    return hmac.compare_digest(who, customer_id) and hmac.compare_digest(expected, signature)
