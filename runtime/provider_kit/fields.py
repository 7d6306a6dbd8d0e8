"""Field types that provider settings share, so that every provider checks them alike.

Each one is an ``Annotated`` type for a pydantic model field; a bad value is refused with a
message that names the rule (never a traceback), and pydantic adds the field's name.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from runtime.phone_numbers import E164Number

__all__ = [
    "AbsoluteUrl",
    "BaseUrl",
    "E164Number",
    "OriginUrl",
    "SenderId",
    "digits_only",
]


def _absolute(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


def _base(value: str) -> str:
    parts = urlsplit(_absolute(value))
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or a fragment")
    return value.rstrip("/")


def _origin(value: str) -> str:
    parts = urlsplit(_absolute(value))
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be scheme://host[:port] only: the provider's own paths are kept")
    return f"{parts.scheme}://{parts.netloc}"


AbsoluteUrl = Annotated[str, AfterValidator(_absolute)]
"""An absolute http(s) URL kept as written, query included: a webhook the provider calls."""

BaseUrl = Annotated[str, AfterValidator(_base)]
"""An absolute http(s) URL without query or fragment, kept without its trailing slash: the
provider's API, to which request paths are appended (tests point it at a local server)."""

OriginUrl = Annotated[str, AfterValidator(_origin)]
"""``scheme://host[:port]`` only, for a client that builds its own paths (Twilio's SDK)."""

SenderId = Annotated[str, Field(pattern=r"^(?:[A-Za-z0-9 ]{1,11}|\+?[0-9]{3,15})$")]
"""What an SMS shows as its sender: an alphanumeric id of 1 to 11 letters, digits or spaces
(the GSM limit), or a number of 3 to 15 digits (a short code, or international with or
without ``+``)."""


def digits_only(e164: str) -> str:
    """``+447700900123`` -> ``447700900123``, for APIs that want the number without ``+``."""
    return e164.removeprefix("+")
