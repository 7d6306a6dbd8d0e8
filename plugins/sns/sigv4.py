"""AWS Signature Version 4 for the one request shape of ``Publish`` (hashlib and hmac only).

Why our own signer and not botocore's ``SigV4Auth``: botocore's signer is general (any method,
query, headers, streaming bodies) and cost ~95 µs per request, which held the plugin to 0.38x
of a bare aiohttp client at 50 in flight (``bench/providers.py``). Every ``Publish`` has the
same shape (POST, the endpoint's path, no query, a form body, the headers ``content-type``,
``host``, ``x-amz-date`` and, with a session token, ``x-amz-security-token``), so the
signature is computed for that shape only; the derived signing key is cached per (secret, day,
region). The tests prove it equal, byte for byte, to botocore's ``SigV4Auth`` at frozen times.
Nothing here logs (botocore's signer logged the canonical request, with the session token).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import quote, urlsplit

__all__ = ["ALGORITHM", "CONTENT_TYPE", "SERVICE", "Target", "amz_date", "sigv4_headers", "target"]

SERVICE = "sns"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
ALGORITHM = "AWS4-HMAC-SHA256"


class Target(NamedTuple):
    """Where a ``Publish`` goes: the URL, the ``Host`` header, the canonical URI."""

    url: str
    host: str
    canonical_uri: str


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, and empty segments dropped (as AWS wants and botocore does)."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and segments else ""
    return first + "/".join(segments) + last


@lru_cache(maxsize=256)
def target(endpoint: str) -> Target:
    """The ``Publish`` target of ``endpoint`` (``base_url``, without its trailing slash).

    ``Host`` as SigV4 signs it: the lowercase host name (in brackets for IPv6), with the port
    only when it is not the scheme's default. The canonical URI is the path with dot segments
    and empty segments removed, percent-encoded again except ``/`` and ``~`` (every AWS
    service but S3 encodes the path twice).
    """
    url = endpoint + "/"
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{port}"
    return Target(url, host, quote(_remove_dot_segments(parts.path) or "/", safe="/~"))


@lru_cache(maxsize=256)
def _signer(secret: str, day: str, region: str) -> hmac.HMAC:
    """HMAC-SHA256 keyed with kSigning, which is
    HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), "sns"), "aws4_request").

    Cached per (secret, day, region): the key changes once a day, deriving it is four of the
    five HMACs of a signature, and a keyed HMAC object is copied (never updated in place) for
    each signature, which skips the key setup. Held in memory only, never logged.
    """
    key = hmac.digest(f"AWS4{secret}".encode(), day.encode(), "sha256")
    for part in (region, SERVICE, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return hmac.new(key, digestmod=hashlib.sha256)


_last_date: tuple[int, str] = (-1, "")


def amz_date(now: float) -> str:
    """``X-Amz-Date`` for the Unix time ``now``: ``20261128T093000Z`` (UTC, to the second)."""
    global _last_date
    second = int(now)
    cached_second, text = _last_date
    if cached_second != second:
        text = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
        _last_date = (second, text)
    return text


@lru_cache(maxsize=256)
def _canonical_parts(target: Target, session_token: str | None) -> tuple[str, str, str]:
    """The canonical request around its two variable parts (the date and the body's hash),
    and the signed header names: fixed per endpoint and session token, so cached (a session
    token is a kilobyte to trim)."""
    if session_token is None:
        signed = "content-type;host;x-amz-date"
        token_line = ""
    else:
        signed = "content-type;host;x-amz-date;x-amz-security-token"
        token_line = f"x-amz-security-token:{' '.join(session_token.split())}\n"
    before_date = (
        f"POST\n{target.canonical_uri}\n\n"
        f"content-type:{CONTENT_TYPE}\nhost:{target.host}\nx-amz-date:"
    )
    return before_date, f"\n{token_line}\n{signed}\n", signed


def sigv4_headers(
    target: Target,
    body: bytes,
    *,
    region: str,
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None,
    date: str,
) -> dict[str, str]:
    """The headers of a SigV4-signed ``POST`` of the form ``body`` to ``target`` at ``date``.

    AWS's algorithm for exactly this shape (no query string; the body is hashed, as botocore
    does for every Query-protocol request, with no ``X-Amz-Content-SHA256`` header):

    - canonical request: ``POST``, the canonical URI, an empty query, the canonical headers
      (``name:value`` lines, names lowercase and sorted, values trimmed and inner whitespace
      runs collapsed), an empty line, the signed header names joined by ``;``, and the body's
      SHA-256 in hex;
    - string to sign: ``AWS4-HMAC-SHA256``, ``date``, the scope ``day/region/sns/aws4_request``
      and the canonical request's SHA-256 in hex, one a line;
    - signature: HMAC-SHA256 of the string to sign with the derived key, in hex.
    """
    day = date[:8]
    scope = f"{day}/{region}/{SERVICE}/aws4_request"
    before_date, after_date, signed = _canonical_parts(target, session_token)
    canonical_request = before_date + date + after_date + hashlib.sha256(body).hexdigest()
    string_to_sign = (
        f"{ALGORITHM}\n{date}\n{scope}\n" + hashlib.sha256(canonical_request.encode()).hexdigest()
    )
    mac = _signer(secret_access_key, day, region).copy()
    mac.update(string_to_sign.encode())
    signature = mac.hexdigest()
    headers = {
        "Content-Type": CONTENT_TYPE,
        "Host": target.host,
        "X-Amz-Date": date,
        "Authorization": (
            f"{ALGORITHM} Credential={access_key_id}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        ),
    }
    if session_token is not None:
        headers["X-Amz-Security-Token"] = session_token
    return headers
