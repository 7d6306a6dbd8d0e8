"""Recipient numbers: parsed with ``phonenumbers`` and normalised to E.164.

Kept separate so that every model and every provider agrees on one normal form, and so that a
number a carrier would reject never costs a provider call.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator

__all__ = ["E164Number", "country_of", "normalise_e164"]

_SEPARATORS = str.maketrans("", "", " -().\u00a0")


@lru_cache(maxsize=65536)
def normalise_e164(value: str) -> str:
    """Return ``value`` in E.164 (``+14155552671``), or raise ``ValueError`` saying why.

    Numbers are international: a leading ``+``, a leading ``00``, or digits that start with the
    country code (Auth0's legacy hook passed ``1-808-555-5555``). Results are cached: parsing
    costs tens of microseconds and the same users receive codes again and again.
    """
    if not isinstance(value, str):
        raise ValueError("a phone number must be a string")
    compact = value.strip().translate(_SEPARATORS)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    elif not compact.startswith("+"):
        compact = "+" + compact
    try:
        parsed = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{value!r} is not a phone number ({exc})") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{value!r} is not a valid phone number in any numbering plan")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def country_of(e164: str) -> str | None:
    """ISO 3166 region code of an E.164 number (``"US"``), or None when ambiguous/unknown."""
    region: str | None = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    return None if region in (None, "ZZ", "001") else region


E164Number = Annotated[str, AfterValidator(normalise_e164)]
"""A string field that accepts any valid international number and stores its E.164 form."""
