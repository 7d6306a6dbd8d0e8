"""Country allow and deny lists and refused number types, with phonenumbers' own example
numbers of each type: a refused number reaches no provider and names the rule."""

from __future__ import annotations

from typing import Any

import phonenumbers
import pytest

from runtime import PhoneMessageRequest
from runtime.policy.config import DEFAULT_BLOCKED_NUMBER_TYPES, PhoneLimits
from runtime.policy.geo import classify, geo_refusal
from tests.conftest import PipelineFactory
from tests.fake_providers import ProvidersPlugin, ScriptedProvider

T = phonenumbers.PhoneNumberType


def example(region: str, kind: int) -> str:
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None, (region, kind)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@pytest.mark.parametrize(
    ("region", "kind", "name"),
    [
        ("GB", T.PREMIUM_RATE, "premium_rate"),
        ("FR", T.SHARED_COST, "shared_cost"),
        ("GB", T.PERSONAL_NUMBER, "personal_number"),
        ("GB", T.UAN, "uan"),
        ("GB", T.PAGER, "pager"),
    ],
)
def test_risky_number_types_are_refused_by_default(region: str, kind: int, name: str) -> None:
    number = example(region, kind)
    assert classify(number) == (region, name)
    refusal = geo_refusal(number, PhoneLimits())
    assert refusal is not None
    assert refusal.reason == "number_type_blocked"
    assert name in refusal.detail
    assert name in DEFAULT_BLOCKED_NUMBER_TYPES


@pytest.mark.parametrize(
    ("region", "kind"), [("GB", T.MOBILE), ("US", T.FIXED_LINE_OR_MOBILE), ("DE", T.MOBILE)]
)
def test_ordinary_numbers_pass_and_a_tenant_may_refuse_more_types(region: str, kind: int) -> None:
    number = example(region, kind)
    assert geo_refusal(number, PhoneLimits()) is None
    voip = example("GB", T.VOIP)
    assert geo_refusal(voip, PhoneLimits()) is None
    strict = PhoneLimits(blocked_number_types=["voip", "premium_rate"])
    refusal = geo_refusal(voip, strict)
    assert refusal is not None
    assert refusal.reason == "number_type_blocked"


def test_allow_and_deny_lists() -> None:
    gb, fr, us = example("GB", T.MOBILE), example("FR", T.MOBILE), example("US", T.MOBILE)
    denied = PhoneLimits(blocked_countries=["fr"])
    assert geo_refusal(gb, denied) is None
    refusal = geo_refusal(fr, denied)
    assert refusal is not None
    assert (refusal.reason, "FR" in refusal.detail) == ("country_blocked", True)
    allowed = PhoneLimits(allowed_countries=["GB", "US"])
    assert geo_refusal(gb, allowed) is None
    assert geo_refusal(us, allowed) is None
    outside = geo_refusal(fr, allowed)
    assert outside is not None
    assert "allowed_countries" in outside.detail
    global_number = "+80012345678"  # International Freephone: no single country
    assert classify(global_number)[0] is None
    assert geo_refusal(global_number, allowed) is not None  # no single country: not allowed


def test_a_bad_setting_names_its_field() -> None:
    for fields, name in (
        ({"allowed_countries": ["Britain"]}, "allowed_countries"),
        ({"blocked_number_types": ["premium"]}, "blocked_number_types"),
        ({"user_voice": "once an hour"}, "user_voice"),
        ({"tenant": "10/fortnight"}, "tenant"),
        ({"recipient": "0/hour"}, "recipient"),
    ):
        with pytest.raises(ValueError, match=name):
            PhoneLimits.model_validate(fields)


async def test_refused_numbers_reach_no_provider(make_pipeline: PipelineFactory) -> None:
    primary = ScriptedProvider("primary")
    limits: dict[str, Any] = {"blocked_countries": ["FR"]}
    pipeline = make_pipeline(
        {"acme": {"provider": "primary", "phone_limits": limits}},
        plugins=(ProvidersPlugin(primary),),
    )

    async def send(number: str) -> str | None:
        request = PhoneMessageRequest.create(tenant="acme", recipient=number, code="123456")
        return (await pipeline.deliver(request)).reason

    assert await send(example("GB", T.PREMIUM_RATE)) == "number_type_blocked"
    assert await send(example("FR", T.MOBILE)) == "country_blocked"
    assert await send(example("GB", T.MOBILE)) is None
    assert [m.recipient for m in primary.sent] == [example("GB", T.MOBILE)]
