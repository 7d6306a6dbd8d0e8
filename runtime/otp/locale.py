"""The locale a code's message is written in, from the request: ``x-request-language`` (as
Auth0's), then ``Accept-Language`` (the highest ``q``), then the user's own locale, then
``en``. A value that is not a language tag is passed over, never an error: the message is
sent in the next language of the chain rather than not at all."""

from __future__ import annotations

import re

__all__ = ["DEFAULT_LOCALE", "accept_language", "request_locale"]

DEFAULT_LOCALE = "en"
_TAG = re.compile(r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,4}$")
_MAX_TAG = 35  # PhoneMessageRequest.locale's limit
_MAX_ENTRIES = 20  # of an Accept-Language header: more is not a browser's


def _tag(value: str | None) -> str | None:
    value = (value or "").strip()
    if len(value) > _MAX_TAG or not _TAG.match(value):
        return None
    return value.replace("_", "-")


def accept_language(header: str | None) -> str | None:
    """The preferred language tag of an ``Accept-Language`` header (``*`` and ``q=0`` skipped)."""
    best: tuple[float, str] | None = None
    for entry in (header or "").split(",")[:_MAX_ENTRIES]:
        name, _, params = entry.partition(";")
        tag = _tag(name)
        if tag is None:
            continue
        quality = 1.0
        found = re.search(r"q\s*=\s*([0-9.]+)", params)
        if found:
            try:
                quality = float(found.group(1))
            except ValueError:
                continue
        if quality > 0 and (best is None or quality > best[0]):
            best = (quality, tag)
    return None if best is None else best[1]


def request_locale(
    x_request_language: str | None,
    accept: str | None,
    user_locale: str | None,
    default: str = DEFAULT_LOCALE,
) -> str:
    """The first usable locale of the chain in the module docstring."""
    for candidate in (_tag(x_request_language), accept_language(accept), _tag(user_locale)):
        if candidate:
            return candidate
    return default
