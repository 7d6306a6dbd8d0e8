"""Country and number-type rules: which numbers a tenant's codes may go to at all.

A number is classified once (``phonenumbers``: its region and its type) and cached, bounded:
recipients are E.164 strings already validated by the request model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from runtime.policy.config import PhoneLimits

__all__ = ["GeoRefusal", "classify", "geo_refusal"]

_TYPE_NAMES = {
    value: name.lower()
    for name, value in vars(phonenumbers.PhoneNumberType).items()
    if name.isupper() and isinstance(value, int)
}


@dataclass(frozen=True)
class GeoRefusal:
    """Why a number is refused: ``country_blocked`` or ``number_type_blocked``."""

    reason: str
    detail: str


@lru_cache(maxsize=65536)
def classify(e164: str) -> tuple[str | None, str]:
    """The number's region (None when not one country) and type (``mobile``, ``premium_rate``).

    Cached: parsing costs tens of microseconds; entries are short E.164 strings."""
    parsed = phonenumbers.parse(e164, None)
    region: str | None = phonenumbers.region_code_for_number(parsed)
    if region in (None, "ZZ", "001"):
        region = None
    kind = _TYPE_NAMES.get(phonenumbers.number_type(parsed), "unknown")
    return region, kind


def geo_refusal(recipient: str, limits: PhoneLimits) -> GeoRefusal | None:
    """The rule that refuses ``recipient`` under ``limits``, or None when it may get a code."""
    region, kind = classify(recipient)
    shown = region or "no single country"
    if region in limits.blocked_countries:
        return GeoRefusal(
            "country_blocked", f"the tenant blocks numbers of {region} (blocked_countries)"
        )
    if limits.allowed_countries and region not in limits.allowed_countries:
        allowed = ", ".join(limits.allowed_countries)
        return GeoRefusal(
            "country_blocked",
            f"the number is of {shown}; the tenant sends only to {allowed} (allowed_countries)",
        )
    if kind in limits.blocked_number_types:
        return GeoRefusal(
            "number_type_blocked",
            f"the number is a {kind} number, which the tenant refuses (blocked_number_types)",
        )
    return None
