"""A tenant's phone abuse protection: its rate limits, country rules and refused number types.

One frozen model, :class:`PhoneLimits`, that a tenant stores through
``/api/v2/attack-protection/phone-limits`` (or the ``phone_limits`` table of a TOML tenant).
The defaults are Auth0's documented limits (10 SMS or voice messages per user per hour, one
voice call per user per hour, 5 code requests per user per 5 minutes) and the risky number
types refused: a tenant that configures nothing is protected. Per-IP, per-recipient, country
and tenant-wide rates are there to be set. Rates are
written in the ``limits`` library's notation (``"10/hour"``, ``"5 per 5 minutes"``) and parsed
here, so a typo is refused when saved, naming the field.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Literal, get_args

from limits import RateLimitItem, parse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from runtime.phone_numbers import region_code

__all__ = [
    "DEFAULT_BLOCKED_NUMBER_TYPES",
    "NUMBER_TYPES",
    "RULES",
    "NumberType",
    "PhoneLimits",
    "parse_rate",
]

NumberType = Literal[
    "fixed_line",
    "mobile",
    "fixed_line_or_mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "unknown",
]
NUMBER_TYPES: tuple[str, ...] = get_args(NumberType)  # phonenumbers' PhoneNumberType, lower-case
DEFAULT_BLOCKED_NUMBER_TYPES: tuple[NumberType, ...] = (
    "premium_rate",  # the caller pays the owner: the classic SMS/voice pumping target
    "shared_cost",
    "personal_number",  # forwarding numbers (UK 070): charged like premium rate
    "uan",
    "pager",  # cannot receive a code anyway
)
RULES = ("ip", "recipient", "user_requests", "user_messages", "user_voice", "country", "tenant")
"""The rate-limit rules, in the order they are checked (docs/abuse_protection.md)."""

_MAX_WINDOW = 7 * 24 * 3600  # seconds: a week at most (memory and Redis keep every window)
_MAX_AMOUNT = 1_000_000


_ZERO_WINDOW = re.compile(r"(?:/|\bper)\s*0+\s*[a-z]", re.IGNORECASE)
"""A window of zero units (``2/0 hour``, ``2 per 0 hours``)."""


def parse_rate(text: str) -> RateLimitItem:
    """``text`` (``"10/hour"``, ``"5 per 5 minutes"``) as a limits item; ValueError saying why
    (without repeating ``text``: the API never shows a body's values)."""
    try:
        item = parse(text)
    except ValueError:
        raise ValueError(
            "is not a rate: write AMOUNT per [N] second|minute|hour|day "
            "(such as '10/hour' or '5 per 5 minutes')"
        ) from None
    if _ZERO_WINDOW.search(text):  # limits reads "2/0 hour" as 2 per 1 hour
        raise ValueError("the window must be at least 1 second|minute|hour|day")
    if not 1 <= item.amount <= _MAX_AMOUNT:
        raise ValueError(f"the amount must be 1 to {_MAX_AMOUNT}")
    if item.get_expiry() > _MAX_WINDOW:
        raise ValueError("the window must be at most a week")
    return item


def _rate(value: str | None) -> str | None:
    if value is not None:
        parse_rate(value)
    return value


Rate = Annotated[str | None, AfterValidator(_rate)]


class PhoneLimits(BaseModel):
    """One tenant's phone abuse protection; a rate that is null is not checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_messages: Rate = Field(
        default="10/hour", description="SMS and voice messages per user (Auth0: 10 per hour)."
    )
    user_voice: Rate = Field(
        default="1/hour", description="Voice calls per user (Auth0: 1 per hour after a burst)."
    )
    user_requests: Rate = Field(
        default="5 per 5 minutes",
        description="Code requests per user, any channel (Auth0: 5 every 5 minutes).",
    )
    ip: Rate = Field(
        default=None,
        description="Code requests per end-user IP (event.request.ip); off by default: a "
        "backend that calls for all its users would be one IP (Auth0 uses 10/minute).",
    )
    recipient: Rate = Field(
        default=None, description="Messages per phone number, whichever user asks; off by default."
    )
    tenant: Rate = Field(default=None, description="Messages of the whole tenant; off by default.")
    country_hourly_caps: dict[str, int] = Field(
        default_factory=dict,
        max_length=300,
        description="Messages per hour to each country (ISO 3166 alpha-2), all users together.",
    )
    allowed_countries: list[str] = Field(
        default_factory=list,
        max_length=300,
        description="When not empty, only numbers of these countries receive codes.",
    )
    blocked_countries: list[str] = Field(
        default_factory=list, max_length=300, description="Countries that never receive codes."
    )
    blocked_number_types: list[NumberType] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED_NUMBER_TYPES),
        max_length=len(NUMBER_TYPES),
        description="Number types refused (phonenumbers' types); premium-rate and other "
        "risky types by default.",
    )

    @field_validator("allowed_countries", "blocked_countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        countries = set()
        for number, country in enumerate(value):
            try:
                countries.add(region_code(country))
            except ValueError as exc:  # the entry by its place: a body's values are not shown
                raise ValueError(f"entry {number}: {exc}") from None
        return sorted(countries)

    @field_validator("country_hourly_caps")
    @classmethod
    def _caps(cls, value: dict[str, int]) -> dict[str, int]:
        caps = {}
        for country, cap in value.items():
            if not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= _MAX_AMOUNT:
                raise ValueError(
                    f"{country}: the cap must be a whole number 1 to {_MAX_AMOUNT} "
                    "(to send none, add the country to blocked_countries)"
                )
            caps[region_code(country)] = cap
        return caps

    @field_validator("blocked_number_types")
    @classmethod
    def _types(cls, value: list[NumberType]) -> list[NumberType]:
        return sorted(set(value))

    @cached_property
    def items(self) -> dict[str, RateLimitItem]:
        """The rates that are set, parsed once per configuration (the model is frozen)."""
        rates = {
            "ip": self.ip,
            "recipient": self.recipient,
            "user_requests": self.user_requests,
            "user_messages": self.user_messages,
            "user_voice": self.user_voice,
            "tenant": self.tenant,
        }
        return {rule: parse_rate(text) for rule, text in rates.items() if text is not None}

    @cached_property
    def limits_anonymous(self) -> bool:
        """Whether a rate limit can apply to a request without a user id (ip, recipient,
        tenant, a country cap): when not, such a request costs the limiter nothing."""
        return bool(self.country_hourly_caps) or any(
            rule in self.items for rule in ("ip", "recipient", "tenant")
        )
