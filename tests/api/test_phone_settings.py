"""GET/PATCH /api/v2/phone/settings on SQLite and PostgreSQL: the defaults, a change kept and
live at once for POST /api/v2/phone/messages (a national number, the fallback to the default
sender), bad bodies refused naming the field with nothing stored, scopes, and one tenant never
seeing or changing another's settings."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.store.service import ServiceStore
from tests.api.conftest import Api, new_tenant
from tests.api.test_guardian import assert_error
from tests.support.stub_server import StubServer
from tests.twilio.conftest import ACCOUNT_SID, AUTH_TOKEN

SETTINGS = "/api/v2/phone/settings"
SEND = "/api/v2/phone/messages"
GUARDIAN = "/api/v2/guardian/factors/phone"
READ, UPDATE = "read:guardian_factors", "update:guardian_factors"
DEFAULTS = {"fallback": "retryable", "default_country": None}


@pytest.fixture
def tenant(store: ServiceStore) -> str:
    """A tenant of this test only: its settings start at the defaults."""
    return store.tenants.create(new_tenant()).id


def patch(api: Api, tenant: str, body: Any) -> Any:
    return api.client.patch(SETTINGS, json=body, headers=api.auth(tenant, READ, UPDATE))


def read(api: Api, tenant: str) -> Any:
    response = api.client.get(SETTINGS, headers=api.auth(tenant, READ))
    assert response.status_code == 200, response.text
    return response.json()


def send(api: Api, tenant: str, to: str) -> dict[str, Any]:
    headers = api.auth(tenant, "create:phone_messages")
    response = api.client.post(SEND, json={"to": to, "code": "135790"}, headers=headers)
    body: dict[str, Any] = response.json()
    body["http_status"] = response.status_code
    return body


def test_the_defaults(api: Api, tenant: str) -> None:
    assert read(api, tenant) == DEFAULTS


def test_a_change_is_kept_and_only_the_fields_given_change(api: Api, tenant: str) -> None:
    changed = patch(api, tenant, {"fallback": "never"})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"fallback": "never", "default_country": None}
    changed = patch(api, tenant, {"default_country": "gb"})
    assert changed.json() == {"fallback": "never", "default_country": "GB"}
    assert read(api, tenant) == {"fallback": "never", "default_country": "GB"}
    cleared = patch(api, tenant, {"default_country": None, "fallback": "always"})
    assert cleared.json() == {"fallback": "always", "default_country": None}
    assert patch(api, tenant, {}).json() == read(api, tenant)


def test_other_settings_of_the_tenant_are_kept(api: Api, store: ServiceStore, tenant: str) -> None:
    store.tenants.update(tenant, settings={"record": True, "record_keep": ["from_number"]})
    version = store.tenants.version(tenant)
    assert patch(api, tenant, {"default_country": "US"}).status_code == 200
    row = store.tenants.get(tenant)
    assert row.settings == {"record": True, "record_keep": ["from_number"], "default_country": "US"}
    assert row.version > version  # what other nodes poll


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fallback": "sometimes"}, "fallback"),
        ({"fallback": None}, "fallback"),
        ({"default_country": "XX"}, "default_country"),
        ({"default_country": "USA"}, "default_country"),
        ({"default_country": 1}, "default_country"),
        ({"fallback": "never", "retries": 3}, "retries"),
        ([], "valid dictionary"),  # not an object: nothing to name but the body
    ],
)
def test_a_bad_body_is_400_naming_the_field_and_nothing_is_stored(
    api: Api, tenant: str, body: Any, field: str
) -> None:
    error = assert_error(patch(api, tenant, body), 400, field)
    assert error["errorCode"] == "invalid_body"
    assert error["message"].startswith("Payload validation error")
    assert read(api, tenant) == DEFAULTS


def test_tokens_and_scopes(api: Api, tenant: str) -> None:
    assert_error(api.client.get(SETTINGS), 401)
    assert_error(api.client.patch(SETTINGS, json={"fallback": "never"}), 401)
    bearer = {"Authorization": "Bearer not-a-token"}
    assert_error(api.client.get(SETTINGS, headers=bearer), 401, "Invalid token")
    assert_error(api.client.get(SETTINGS, headers=api.auth(tenant, UPDATE)), 403, READ)
    refused = api.client.patch(SETTINGS, json={"fallback": "never"}, headers=api.auth(tenant, READ))
    assert_error(refused, 403, UPDATE)
    assert read(api, tenant) == DEFAULTS


def test_a_tenant_never_reads_or_changes_anothers(api: Api, tenant: str) -> None:
    other = api.tenant_b
    assert patch(api, other, {"fallback": "always", "default_country": "FR"}).status_code == 200
    assert read(api, tenant) == DEFAULTS  # B's change is not A's
    assert patch(api, tenant, {"fallback": "never"}).status_code == 200
    assert read(api, other) == {"fallback": "always", "default_country": "FR"}
    patch(api, other, {"fallback": "retryable", "default_country": None})


def test_a_default_country_is_live_for_the_next_delivery(api: Api, tenant: str) -> None:
    refused = send(api, tenant, "(201) 555-0123")
    assert refused["http_status"] == 400
    assert "to" in refused["message"]
    assert patch(api, tenant, {"default_country": "US"}).status_code == 200
    accepted = send(api, tenant, "(201) 555-0123")
    assert accepted["http_status"] == 200, accepted
    assert (accepted["status"], accepted["recipient"]) == ("stored", "+12015550123")
    assert patch(api, tenant, {"default_country": None}).status_code == 200
    assert send(api, tenant, "(201) 555-0123")["http_status"] == 400


def test_the_fallback_policy_is_live_for_the_next_delivery(
    api: Api, store: ServiceStore, tenant: str
) -> None:
    """A Twilio that answers 503 (retryable, not handed off): ``retryable`` falls back to the
    default sender (the outbox), ``never`` fails, and ``always`` falls back again."""
    with StubServer() as twilio:
        twilio.respond(503, {"code": 20500, "message": "Service unavailable", "status": 503})
        # Twilio's API at the tenant's base_url (an imported setting): the stub on 127.0.0.1
        store.tenants.update(
            tenant, settings={"provider": "twilio", "provider_settings": {"base_url": twilio.url}}
        )
        writer = api.auth(tenant, UPDATE)
        twilio_settings = {"sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": "+14155550100"}
        put = api.client.put(f"{GUARDIAN}/providers/twilio", json=twilio_settings, headers=writer)
        assert put.status_code == 200, put.text
        put = api.client.put(
            f"{GUARDIAN}/selected-provider", json={"provider": "twilio"}, headers=writer
        )
        assert put.status_code == 200, put.text
        fell_back = send(api, tenant, "+14155552671")
        assert (fell_back["status"], fell_back["path"]) == ("stored", ["twilio", "outbox"])
        assert patch(api, tenant, {"fallback": "never"}).status_code == 200
        failed = send(api, tenant, "+14155552671")
        assert (failed["status"], failed["reason"]) == ("failed", "provider_failed"), failed
        assert failed["path"] == ["twilio"]
        assert patch(api, tenant, {"fallback": "always"}).status_code == 200
        again = send(api, tenant, "+14155552671")
        assert (again["status"], again["path"]) == ("stored", ["twilio", "outbox"])
        assert twilio.requests  # Twilio was really tried each time
    assert store.tenants.get(tenant).settings["provider_settings"] == {"base_url": twilio.url}
