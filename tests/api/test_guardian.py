"""The guardian phone-factor endpoints as Auth0's: bodies, scopes, errors in Auth0's shape,
the Twilio auth token write-only, templates checked, and each token confined to its tenant.
On SQLite and PostgreSQL (the ``api`` fixture)."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.store.crypto import Keyring
from runtime.store.db import create_engine_for
from runtime.store.service import ServiceStore
from tests.api.conftest import Api

BASE = "/api/v2/guardian/factors/phone"
READ, UPDATE = "read:guardian_factors", "update:guardian_factors"

# (path, a valid PUT body, what GET returns after it)
RESOURCES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("/message-types", {"message_types": ["sms", "voice"]}, {"message_types": ["sms", "voice"]}),
    ("/selected-provider", {"provider": "phone-message-hook"}, {"provider": "phone-message-hook"}),
    (
        "/providers/twilio",
        {"sid": "AC123", "auth_token": "tok-secret-1", "from": "+15555550100"},
        {"sid": "AC123", "auth_token": None, "from": "+15555550100", "messaging_service_sid": None},
    ),
    (
        "/templates",
        {
            "enrollment_message": "{{code}} enrolls you at {{tenant.friendly_name}}",
            "verification_message": "{{code}} is your code",
        },
        {
            "enrollment_message": "{{code}} enrolls you at {{tenant.friendly_name}}",
            "verification_message": "{{code}} is your code",
        },
    ),
]
PATHS = [r[0] for r in RESOURCES]


def store_of(api: Api) -> ServiceStore:
    settings = api.settings
    master = settings.master_key.get_secret_value() if settings.master_key else None
    engine = create_engine_for(settings.resolved_database_url, timeout=5)
    return ServiceStore(engine, Keyring.load(master, settings.data_dir))


def assert_error(response: Any, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"statusCode", "error", "message", "errorCode"}
    assert body["statusCode"] == status
    for word in words:
        assert word in body["message"], body
    return body


def test_defaults_are_auth0s(api: Api) -> None:
    headers = api.auth(api.tenant_b, READ)
    get = api.client.get
    assert get(f"{BASE}/message-types", headers=headers).json() == {"message_types": ["sms"]}
    assert get(f"{BASE}/selected-provider", headers=headers).json() == {"provider": "auth0"}
    assert get(f"{BASE}/providers/twilio", headers=headers).json() == {
        "from": None,
        "messaging_service_sid": None,
        "auth_token": None,
        "sid": None,
    }
    assert get(f"{BASE}/templates", headers=headers).json() == {  # Auth0's OAS defaults
        "enrollment_message": "{{code}} is your verification code for {{tenant.friendly_name}}. "
        "Please enter this code to verify your enrollment.",
        "verification_message": "{{code}} is your verification code for {{tenant.friendly_name}}",
    }


@pytest.mark.parametrize(("path", "body", "expected"), RESOURCES, ids=PATHS)
def test_put_then_get_returns_it(
    api: Api, path: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    put = api.client.put(f"{BASE}{path}", json=body, headers=api.auth(None, UPDATE))
    assert put.status_code == 200, put.text
    assert put.json() == expected
    got = api.client.get(f"{BASE}{path}", headers=api.auth(None, READ))
    assert got.status_code == 200
    assert got.json() == expected


def test_twilio_token_is_write_only_sealed_and_kept_by_a_put_without_it(api: Api) -> None:
    headers = api.auth(None, UPDATE)
    body = {"sid": "AC9", "auth_token": "never-shown-7781"}
    assert api.client.put(f"{BASE}/providers/twilio", json=body, headers=headers).status_code == 200
    again = api.client.put(
        f"{BASE}/providers/twilio", json={"from": "+15555550199"}, headers=headers
    )
    assert again.status_code == 200
    assert "never-shown-7781" not in again.text
    assert again.json()["sid"] == "AC9"  # fields not given are kept
    store = store_of(api)
    try:
        assert store.guardian.twilio_token(api.tenant_a) == "never-shown-7781"
        raw = store.guardian.settings(api.tenant_a)
        assert raw is not None
        assert "never-shown-7781" not in str(raw)
    finally:
        store.engine.dispose()
    read = api.client.get(f"{BASE}/providers/twilio", headers=api.auth(None, READ))
    assert read.json()["auth_token"] is None


def test_a_change_is_live_for_the_next_delivery(api: Api) -> None:
    """The directory is refreshed after the write: the next delivery follows it at once."""
    tenant = api.tenant_b
    send = {"to": "+14155552671", "code": "424242", "channel": "sms"}
    messages = api.auth(tenant, "create:phone_messages")
    types = f"{BASE}/message-types"
    api.client.put(types, json={"message_types": ["voice"]}, headers=api.auth(tenant, UPDATE))
    refused = api.client.post("/api/v2/phone/messages", json=send, headers=messages).json()
    assert refused["reason"] == "message_type_disabled"
    api.client.put(types, json={"message_types": ["sms"]}, headers=api.auth(tenant, UPDATE))
    sent = api.client.post("/api/v2/phone/messages", json=send, headers=messages).json()
    assert sent["status"] == "stored", (sent["reason"], sent["detail"])


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/message-types", {"message_types": ["sms", "fax"]}, "message_types[1]"),
        ("/message-types", {"message_types": "sms"}, "message_types"),
        ("/message-types", {}, "message_types"),
        ("/message-types", {"message_types": ["sms"], "extra": 1}, "extra"),
        ("/selected-provider", {"provider": "vonage"}, "provider"),
        ("/selected-provider", {"provider": 3}, "provider"),
        ("/providers/twilio", {"sid": ""}, "sid"),
        ("/providers/twilio", {"from": "x" * 65}, "from"),
        ("/providers/twilio", {"sid": 12}, "sid"),
        ("/providers/twilio", {"account": "AC1"}, "account"),
        ("/templates", {"enrollment_message": "{{code}}"}, "verification_message"),
        (
            "/templates",
            {"enrollment_message": "{{code}}", "verification_message": "no code here"},
            "verification_message",
        ),
        (
            "/templates",
            {"enrollment_message": "{{code}}\n{% if %}", "verification_message": "{{code}}"},
            "enrollment_message",
        ),
    ],
)
def test_bad_bodies_are_400_naming_the_field_and_store_nothing(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    before = api.client.get(f"{BASE}{path}", headers=api.auth(None, READ)).json()
    response = api.client.put(f"{BASE}{path}", json=body, headers=api.auth(None, UPDATE))
    assert_error(response, 400, field)
    after = api.client.get(f"{BASE}{path}", headers=api.auth(None, READ)).json()
    assert after == before


def test_a_template_with_a_liquid_error_names_the_line(api: Api) -> None:
    body = {
        "enrollment_message": "{{code}}\nline two\n{% nosuchtag %}",
        "verification_message": "{{code}}",
    }
    response = api.client.put(f"{BASE}/templates", json=body, headers=api.auth(None, UPDATE))
    error = assert_error(response, 400, "enrollment_message")
    assert "at 3:" in error["message"], error  # line:column


def test_malformed_json_and_a_huge_body_are_refused(api: Api) -> None:
    headers = {**api.auth(None, UPDATE), "Content-Type": "application/json"}
    bad = api.client.put(f"{BASE}/message-types", content=b"{not json", headers=headers)
    assert_error(bad, 400, "JSON")
    huge = {"enrollment_message": "{{code}}" + "x" * (2 * 1024 * 1024), "verification_message": "x"}
    assert_error(api.client.put(f"{BASE}/templates", json=huge, headers=headers), 413)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["get", "put"])
def test_no_or_bad_token_is_401(api: Api, path: str, method: str) -> None:
    call = getattr(api.client, method)
    kwargs: dict[str, Any] = {"json": {}} if method == "put" else {}
    assert_error(call(f"{BASE}{path}", **kwargs), 401, "Missing authentication")
    bad = {"Authorization": "Bearer not.a.token"}
    assert_error(call(f"{BASE}{path}", headers=bad, **kwargs), 401)


@pytest.mark.parametrize(("path", "body", "expected"), RESOURCES, ids=PATHS)
def test_missing_scope_is_403(
    api: Api, path: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    # a reader cannot write, a writer cannot read, other scopes open neither
    put = api.client.put(f"{BASE}{path}", json=body, headers=api.auth(None, READ))
    assert_error(put, 403, f"Insufficient scope, expected any of: {UPDATE}")
    get = api.client.get(f"{BASE}{path}", headers=api.auth(None, UPDATE, "read:actions"))
    assert_error(get, 403, f"Insufficient scope, expected any of: {READ}")


def test_unknown_path_is_404(api: Api) -> None:
    response = api.client.get(f"{BASE}/providers/vonage", headers=api.auth(None, READ))
    assert_error(response, 404)


def test_a_tenant_never_reads_or_changes_anothers_settings(api: Api) -> None:
    a, b = api.tenant_a, api.tenant_b
    secret = {"sid": "AC-of-a", "auth_token": "a-token-5551", "from": "+15555550111"}
    api.client.put(f"{BASE}/providers/twilio", json=secret, headers=api.auth(a, UPDATE))
    api.client.put(
        f"{BASE}/selected-provider", json={"provider": "twilio"}, headers=api.auth(a, UPDATE)
    )
    seen_by_b = api.client.get(f"{BASE}/providers/twilio", headers=api.auth(b, READ)).json()
    assert seen_by_b["sid"] != "AC-of-a"
    # b's writes land in b only
    api.client.put(
        f"{BASE}/selected-provider", json={"provider": "auth0"}, headers=api.auth(b, UPDATE)
    )
    api.client.put(f"{BASE}/providers/twilio", json={"sid": "AC-of-b"}, headers=api.auth(b, UPDATE))
    of_a = api.client.get(f"{BASE}/providers/twilio", headers=api.auth(a, READ)).json()
    assert of_a["sid"] == "AC-of-a"
    chosen = api.client.get(f"{BASE}/selected-provider", headers=api.auth(a, READ)).json()
    assert chosen == {"provider": "twilio"}
