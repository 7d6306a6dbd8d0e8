"""Recipient numbers: read strictly, parsed with ``phonenumbers``, normalised to E.164.

Kept separate so that every model and every provider agrees on one normal form, and so that a
number a carrier would reject never costs a provider call. The rule is strict because a lenient
reader rewrites numbers: ``phonenumbers`` reads letters as keypad digits and drops extensions,
and digits without a country code look like a valid number of *some* country surprisingly
often. So a number is accepted only when it is exactly digits and separators, and it names its
country: with ``+``/``00``, or through the tenant's ``default_country``.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, ValidationInfo

__all__ = [
    "MAX_NUMBER_LENGTH",
    "E164Number",
    "country_of",
    "normalise_e164",
    "region_code",
]

MAX_NUMBER_LENGTH = 64
"""Characters a written number may have (separators included); longer input is refused before
it is parsed or cached, so the cache below holds at most ~65536 short keys."""

_SEPARATORS = frozenset(" \u00a0-\u2010\u2011\u2012\u2013\u2212\uff0d.()")
_PLUS = frozenset("+\uff0b")
_ASCII_DIGITS = frozenset("0123456789")


def region_code(value: object) -> str:
    """``value`` as an upper-case ISO 3166 alpha-2 region ``phonenumbers`` knows; ValueError."""
    if not isinstance(value, str) or len(value) != 2 or not value.isascii():
        raise ValueError("is not an ISO 3166 alpha-2 country code (such as US or GB)")
    region = value.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("is not a country code with a numbering plan (such as US)")
    return region


def normalise_e164(value: object, default_country: str | None = None) -> str:
    """Return ``value`` in E.164 (``+14155552671``), or raise ``ValueError`` saying why
    (never repeating the number: an error may be answered or logged where it must not be).

    Accepted: decimal digits of any script (read as ASCII digits), the separators space, dash,
    dot and round brackets, and a leading ``+`` or ``00``. Without them, the number is national
    and is read in ``default_country``; with no default country it is refused. Letters,
    extensions and any other character are refused: none of them may change the number.
    """
    if not isinstance(value, str):
        raise ValueError("a phone number must be a string")
    if len(value) > MAX_NUMBER_LENGTH:
        raise ValueError(f"a phone number has at most {MAX_NUMBER_LENGTH} characters")
    if default_country is not None:
        default_country = region_code(default_country)
    return _normalise(value, default_country)


def needs_country(value: str) -> bool:
    """Whether ``value`` is written as a national number (no ``+`` or ``00``): read only in a
    tenant's ``default_country``. False for anything refused whatever the country."""
    try:
        _normalise(value, None)
    except ValueError as exc:
        return str(exc).startswith("has no country code")
    return False


@lru_cache(maxsize=65536)
def _normalise(value: str, default_country: str | None) -> str:
    """Cached: parsing costs tens of microseconds and the same users get codes again and again.

    The key is (input, default country): the same digits mean different numbers in different
    countries. Bounded in entries (maxsize) and in entry size (MAX_NUMBER_LENGTH).
    """
    text = value.strip()
    international = bool(text) and text[0] in _PLUS
    digits = []
    for position, char in enumerate(text[1:] if international else text, 1 + international):
        if char in _ASCII_DIGITS:
            digits.append(char)
        elif char.isdecimal():
            digits.append(str(unicodedata.decimal(char)))
        elif char not in _SEPARATORS:
            raise ValueError(_refusal(char, position))
    number = "".join(digits)
    if not number:
        raise ValueError("has no digits")
    if not international and number.startswith("00"):
        international, number = True, number[2:]
    if not international and default_country is None:  # needs_country reads this message
        raise ValueError(
            "has no country code: write it with + and the country code "
            "(+1 415 555 2671), or set the tenant's default_country"
        )
    try:
        parsed = phonenumbers.parse(
            "+" + number if international else number,
            None if international else default_country,
        )
    except phonenumbers.NumberParseException as exc:
        raise ValueError(_unparsed(exc.error_type, international)) from None
    if parsed.extension or not phonenumbers.is_valid_number(parsed):
        where = f"in {default_country}" if not international else "in any numbering plan"
        raise ValueError(f"is not a valid phone number {where}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_TOO_SHORT = "is too short to be a phone number"
_UNPARSED = {
    phonenumbers.NumberParseException.NOT_A_NUMBER: _TOO_SHORT,  # digits only: too few of them
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: _TOO_SHORT,
    phonenumbers.NumberParseException.TOO_SHORT_NSN: _TOO_SHORT,
    phonenumbers.NumberParseException.TOO_LONG: "is too long to be a phone number",
}


def _unparsed(error_type: int, international: bool) -> str:
    """Why ``phonenumbers`` could not read a number of digits, in our words (its own are
    "Could not interpret numbers after plus-sign."), never quoting the digits."""
    if error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
        after = "+ (or 00)" if international else "its international prefix"
        return (
            f"has no country calling code after {after}: the digits there must begin with "
            "one, such as 1 (US) or 44 (UK)"
        )
    return _UNPARSED.get(error_type, "is not a phone number")


def _refusal(char: str, position: int) -> str:
    if char.isalpha():
        why = "letters are not read as digits, and extensions cannot be dialled"
    elif char in _PLUS:
        why = "'+' may only come first"
    else:
        why = "only digits, spaces, '-', '.', '(' and ')' after a leading '+' or '00'"
    return f"has {char!r} at character {position}: {why}"


def _validate(value: str, info: ValidationInfo) -> str:
    """The field validator: the default country comes from the validation context, if any."""
    context = info.context if isinstance(info.context, dict) else {}
    return normalise_e164(value, context.get("default_country"))


def country_of(e164: str) -> str | None:
    """ISO 3166 region code of an E.164 number (``"US"``), or None when ambiguous/unknown."""
    region: str | None = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    return None if region in (None, "ZZ", "001") else region


E164Number = Annotated[str, AfterValidator(_validate)]
"""A string field that accepts a number written as :func:`normalise_e164` allows and stores
its E.164 form. Validate with ``context={"default_country": "US"}`` to accept national
numbers of that country."""
