"""The next hop of a redirect, decided like a browser would but stricter with bodies.

* 303, and 301/302 after a ``POST``, become a ``GET`` without body (and without its
  content type);
* 307/308 keep method and body, but only towards the same origin: a body (a code, a phone
  number, credentials in a form) is never re-sent to another origin the server names;
* towards another origin only harmless headers are kept (never ``Authorization``).

The server is not trusted either: its ``Location`` is checked like a tenant's URL.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

import httpx

from runtime.sandbox.host.egress.policy import MAX_URL, parse_url
from runtime.sandbox.host.refusals import EgressDenied

__all__ = ["REDIRECTS", "Hop", "next_hop", "origin_of", "shown"]

REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CROSS_ORIGIN_HEADERS = frozenset({"accept", "accept-language", "user-agent", "content-type"})


@dataclass(frozen=True, slots=True)
class Hop:
    method: str
    url: httpx.URL
    headers: list[tuple[str, str]]
    body: bytes | None


def next_hop(current: Hop, status: int, location: str) -> Hop:
    """The request to send after ``status`` with ``location``; EgressDenied if refused."""
    method, headers, body = current.method, current.headers, current.body
    following = _join(current.url, location)
    cross_origin = origin_of(following) != origin_of(current.url)
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
        headers = [(k, v) for k, v in headers if k != "content-type"]
    elif body is not None and cross_origin:  # 307/308 (or 301/302 of a PUT...): body kept
        raise EgressDenied(
            f"redirect {status} from {shown(current.url)} to another origin "
            f"({shown(following)}) would re-send the request body; not followed"
        )
    if cross_origin:  # no credentials for another origin
        headers = [(k, v) for k, v in headers if k in _CROSS_ORIGIN_HEADERS]
    return Hop(method, following, headers, body)


def origin_of(url: httpx.URL) -> tuple[str, bytes, int | None]:
    return url.scheme, url.raw_host.lower(), url.port


def shown(url: httpx.URL) -> str:
    """The host as sent (ASCII/IDNA); ``url.host`` would decode IDNA and can raise."""
    return url.raw_host.decode("ascii", "replace")[:255]


def _join(url: httpx.URL, location: str) -> httpx.URL:
    joined: httpx.URL | None = None
    if len(location) <= MAX_URL and not any(ord(ch) < 0x20 for ch in location):
        with suppress(httpx.InvalidURL, ValueError, UnicodeError):
            joined = url.join(location)
    if joined is None:
        raise EgressDenied(f"redirect from {shown(url)} to an invalid URL")
    return parse_url(str(joined), None)
