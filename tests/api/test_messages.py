"""POST /api/v2/phone/messages runs the real pipeline: the code lands in the outbox, once per
idempotency key, in the token's tenant only; a policy refusal is its HTTP status (403, 429 or
503 with Retry-After) with the report as its body plus Auth0's error fields."""

from __future__ import annotations

import uuid
from pathlib import Path

from plugins.outbox import OutboxProvider
from tests.api.conftest import Api, assert_payload_errors
from tests.api.limits_down import api_without_redis

SEND = "/api/v2/phone/messages"


def outbox(api: Api, tenant: str) -> list[str]:
    store = OutboxProvider(api.settings.resolved_database_url, timeout=5)
    return [m.text for m in store.messages(tenant)]


def test_a_code_goes_through_the_pipeline_into_the_outbox(api: Api) -> None:
    headers = api.auth(api.tenant_a, "create:phone_messages")
    before = len(outbox(api, api.tenant_a))
    response = api.client.post(
        SEND,
        json={"to": "+14155552671", "code": "246810", "channel": "sms", "locale": "en"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["status"] == "stored"
    assert report["delivered_by"] == "outbox"
    assert report["tenant"] == api.tenant_a
    assert report["recipient"] == "+14155552671"
    texts = outbox(api, api.tenant_a)
    assert len(texts) == before + 1
    assert "246810" in texts[-1]
    assert all("246810" not in t for t in outbox(api, api.tenant_b))


def test_the_same_idempotency_key_sends_once(api: Api) -> None:
    headers = api.auth(api.tenant_b, "create:phone_messages")
    key = f"k-{uuid.uuid4().hex}"
    body = {"to": "+14155552671", "code": "135790", "idempotency_key": key}
    before = len(outbox(api, api.tenant_b))
    first = api.client.post(SEND, json=body, headers=headers).json()
    second = api.client.post(SEND, json=body, headers=headers).json()
    assert first["status"] == second["status"] == "stored"
    assert second["replayed"] is True
    assert second["id"] == first["id"]
    assert len(outbox(api, api.tenant_b)) == before + 1


def test_the_idempotency_key_header_sends_once_too(api: Api) -> None:
    """A client that sends ``Idempotency-Key`` as a header (as the Verify API takes it) is
    protected the same way: one code."""
    key = f"h-{uuid.uuid4().hex}"
    headers = api.auth(api.tenant_b, "create:phone_messages") | {"Idempotency-Key": key}
    body = {"to": "+14155552671", "code": "975310"}
    before = len(outbox(api, api.tenant_b))
    first = api.client.post(SEND, json=body, headers=headers).json()
    second = api.client.post(SEND, json=body, headers=headers).json()
    assert (first["idempotency_key"], second["replayed"]) == (key, True)
    assert second["id"] == first["id"]
    assert len(outbox(api, api.tenant_b)) == before + 1


def test_voice_and_enrollment_are_passed_on(api: Api) -> None:
    headers = api.auth(api.tenant_a, "create:phone_messages")
    body = {"to": "+14155552671", "code": "864200", "channel": "voice", "purpose": "enrollment"}
    report = api.client.post(SEND, json=body, headers=headers).json()
    assert (report["channel"], report["purpose"]) == ("voice", "enrollment")


FRENCH = "+33612345678"
GERMAN = "+4915123456789"
PREMIUM = "+19002345678"  # phonenumbers' example premium-rate number of the US
ERROR_FIELDS = ("statusCode", "error", "message", "errorCode")


def test_a_number_type_refusal_is_403_and_keeps_the_report(api: Api) -> None:
    headers = api.auth(api.tenant_a, "create:phone_messages")
    before = len(outbox(api, api.tenant_a))
    response = api.client.post(SEND, json={"to": PREMIUM, "code": "918273"}, headers=headers)
    assert response.status_code == 403, response.text
    assert "Retry-After" not in response.headers  # waiting does not help
    body = response.json()
    assert (body["status"], body["reason"]) == ("rejected", "number_type_blocked")
    assert (body["statusCode"], body["error"], body["errorCode"]) == (
        403,
        "Forbidden",
        "number_type_blocked",
    )
    assert body["message"] == f"No code was sent: {body['detail']}"
    assert "premium_rate" in body["message"]
    assert len(outbox(api, api.tenant_a)) == before


def test_a_country_refusal_is_403_and_a_rate_limit_429_with_retry_after(api: Api) -> None:
    tenant = api.tenant_b
    limits = {"blocked_countries": ["FR"], "country_hourly_caps": {"DE": 1}}
    patched = api.client.patch(
        "/api/v2/attack-protection/phone-limits",
        json=limits,
        headers=api.auth(tenant, "update:attack_protection"),
    )
    assert patched.status_code == 200, patched.text
    headers = api.auth(tenant, "create:phone_messages")
    before = len(outbox(api, tenant))

    french = api.client.post(SEND, json={"to": FRENCH, "code": "102938"}, headers=headers)
    assert french.status_code == 403, french.text
    assert (french.json()["reason"], french.json()["errorCode"]) == ("country_blocked",) * 2

    first = api.client.post(SEND, json={"to": GERMAN, "code": "564738"}, headers=headers)
    assert first.status_code == 200, first.text
    assert not set(ERROR_FIELDS) & set(first.json())  # a report that sent is just the report
    key = f"k-{uuid.uuid4().hex}"
    body = {"to": GERMAN, "code": "564739", "idempotency_key": key}
    limited = api.client.post(SEND, json=body, headers=headers)
    assert limited.status_code == 429, limited.text
    report = limited.json()
    assert (report["status"], report["reason"], report["limit"]) == (
        "rejected",
        "rate_limited",
        "country",
    )
    assert (report["statusCode"], report["error"], report["errorCode"]) == (
        429,
        "Too Many Requests",
        "rate_limited",
    )
    assert 3500 < report["retry_after"] <= 3600
    assert int(limited.headers["Retry-After"]) == report["retry_after"]
    assert report["idempotency_key"] == key

    replayed = api.client.post(SEND, json=body, headers=headers)
    assert replayed.status_code == 429
    assert replayed.json()["replayed"] is True
    assert replayed.json()["id"] == report["id"]
    # the same refusal, its wait counted from when it was made
    assert 1 <= int(replayed.headers["Retry-After"]) <= report["retry_after"]
    assert len(outbox(api, tenant)) == before + 1


def test_limits_that_cannot_be_checked_are_503_with_retry_after(tmp_path: Path) -> None:
    with api_without_redis(tmp_path) as down:
        patched = down.client.patch(
            "/api/v2/attack-protection/phone-limits",
            json={"recipient": "10/hour"},  # a rule that applies to a request without a user
            headers=down.auth(down.tenant_a, "update:attack_protection"),
        )
        assert patched.status_code == 200, patched.text
        headers = down.auth(down.tenant_a, "create:phone_messages")
        response = down.client.post(SEND, json={"to": GERMAN, "code": "887766"}, headers=headers)
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"
        body = response.json()
        assert (body["status"], body["reason"], body["errorCode"]) == (
            "rejected",
            "limits_unavailable",
            "limits_unavailable",
        )
        assert body["error"] == "Service Unavailable"
        assert "Traceback" not in response.text
        assert outbox(down, down.tenant_a) == []


def test_a_bad_field_is_named_in_the_documented_shape_without_its_value(api: Api) -> None:
    """docs/service.md, Errors: ``Payload validation error: 'MESSAGE' on property NAME.``, the
    request's own name (``to``), no pydantic ``Value error, `` and never the number or the
    code (they are personal data and secrets)."""
    headers = api.auth(api.tenant_a, "create:phone_messages")
    cases = [
        (
            {"to": "+1 415 FLOWERS", "code": "123456"},
            "'has 'F' at character 8: letters are not read as digits, and extensions cannot "
            "be dialled' on property to.",
        ),
        (
            {"to": "4155552671", "code": "123456"},  # the tenant has no default_country
            "'has no country code: write it with + and the country code (+1 415 555 2671), "
            "or set the tenant's default_country' on property to.",
        ),
        (
            {"to": "+1555", "code": "123456"},
            "'is not a valid phone number in any numbering plan' on property to.",
        ),
        (
            {"to": "+14155552671", "code": "1x"},
            "'must be 4 to 12 letters or digits' on property code.",
        ),
        (
            {"to": "abc", "code": "x1"},
            "'has 'a' at character 1: letters are not read as digits, and extensions cannot be "
            "dialled' on property to; 'must be 4 to 12 letters or digits' on property code.",
        ),
    ]
    assert_payload_errors(api, "POST", SEND, headers, cases)
