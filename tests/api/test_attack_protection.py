"""GET/PATCH /api/v2/attack-protection/phone-limits on SQLite and PostgreSQL: the defaults,
a change that is live at once for POST /api/v2/phone/messages, a bad field refused naming it
with nothing stored, scopes, and one tenant never seeing or changing another's limits."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api, assert_payload_errors

LIMITS = "/api/v2/attack-protection/phone-limits"
SEND = "/api/v2/phone/messages"
READ, UPDATE = "read:attack_protection", "update:attack_protection"


def test_the_defaults_are_auth0s(api: Api) -> None:
    response = api.client.get(LIMITS, headers=api.auth(api.tenant_b, READ))
    assert response.status_code == 200, response.text
    limits = response.json()
    assert limits["user_messages"] == "10/hour"
    assert limits["user_voice"] == "1/hour"
    assert limits["user_requests"] == "5 per 5 minutes"
    assert "premium_rate" in limits["blocked_number_types"]
    assert limits["allowed_countries"] == limits["blocked_countries"] == []


def test_a_change_is_live_at_once_and_only_for_its_tenant(api: Api) -> None:
    changed = api.client.patch(
        LIMITS,
        json={"recipient": "2/hour", "blocked_countries": ["gb"]},
        headers=api.auth(api.tenant_a, UPDATE),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["recipient"] == "2/hour"
    assert changed.json()["blocked_countries"] == ["GB"]
    assert changed.json()["user_messages"] == "10/hour"  # untouched fields keep theirs
    send = api.auth(api.tenant_a, "create:phone_messages")
    body = {"to": "+14155550199", "code": "112233"}
    reports = [api.client.post(SEND, json=body, headers=send).json() for _ in range(3)]
    assert [r["status"] for r in reports] == ["stored", "stored", "rejected"]
    assert (reports[2]["reason"], reports[2]["limit"]) == ("rate_limited", "recipient")
    assert 3500 < reports[2]["retry_after"] <= 3600
    uk = api.client.post(SEND, json={"to": "+447400123456", "code": "445566"}, headers=send).json()
    assert uk["reason"] == "country_blocked"
    other = api.client.get(LIMITS, headers=api.auth(api.tenant_b, READ)).json()
    assert other["recipient"] is None
    assert other["blocked_countries"] == []
    off = api.client.patch(LIMITS, json={"recipient": None}, headers=api.auth(api.tenant_a, UPDATE))
    assert off.json()["recipient"] is None
    again = api.client.post(SEND, json=body, headers=send).json()
    assert again["status"] == "stored"


def test_a_bad_field_is_refused_naming_it_and_nothing_is_stored(api: Api) -> None:
    headers = api.auth(api.tenant_b, READ, UPDATE)
    before = api.client.get(LIMITS, headers=headers).json()
    for body, field in (
        ({"user_messages": "ten an hour"}, "user_messages"),
        ({"blocked_number_types": ["premium"]}, "blocked_number_types"),
        ({"allowed_countries": ["XX"]}, "allowed_countries"),
        ({"country_hourly_caps": {"US": 0}}, "country_hourly_caps"),
        ({"ip": "10/minute", "unknown": 1}, "unknown"),
    ):
        response = api.client.patch(LIMITS, json=body, headers=headers)
        assert response.status_code == 400, response.text
        assert field in response.json()["message"], response.json()
        assert "Traceback" not in response.text
    assert api.client.get(LIMITS, headers=headers).json() == before


def test_scopes(api: Api) -> None:
    assert api.client.get(LIMITS).status_code == 401
    assert api.client.get(LIMITS, headers=api.auth(api.tenant_a, UPDATE)).status_code == 403
    patch = api.client.patch(LIMITS, json={}, headers=api.auth(api.tenant_a, READ))
    assert patch.status_code == 403


def test_a_bad_field_is_named_in_the_documented_shape_without_its_value(api: Api) -> None:
    headers = api.auth(api.tenant_b, READ, UPDATE)
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"recipient": "ten per hour"},
            "'is not a rate: write AMOUNT per [N] second|minute|hour|day (such as '10/hour' or "
            "'5 per 5 minutes')' on property recipient.",
        ),
        ({"ip": "0 per hour"}, "'the amount must be 1 to 1000000' on property ip."),
        (  # the limits library reads it as 2 per hour: what the tenant saw was not enforced
            {"user_messages": "2/0 hour"},
            "'the window must be at least 1 second|minute|hour|day' on property user_messages.",
        ),
        (
            {"allowed_countries": ["GB", "ZQ"]},
            "'entry 1: is not a country code with a numbering plan (such as US)' on property "
            "allowed_countries.",
        ),
    ]
    assert_payload_errors(api, "PATCH", LIMITS, headers, cases)
