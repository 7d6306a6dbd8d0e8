"""GET /api/v2/guardian/factors/phone/templates answers, for a message left at its default,
Auth0's default text (the OAS ``default`` of both fields), while deliveries send the built-in
message in the user's language. A PUT of Auth0's default text keeps a message at its default,
field by field: saving back what GET shows changes nothing a delivery sends, in English or in
German, and a tenant that customised its templates goes back to the localised built-ins by
PUTting the defaults. SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from plugins.outbox import OutboxProvider
from runtime.events import Purpose
from runtime.store.service import ServiceStore
from tests.api.conftest import Api, new_tenant

TEMPLATES = "/api/v2/guardian/factors/phone/templates"
SEND = "/api/v2/phone/messages"
AUTH0_DEFAULTS = {
    "enrollment_message": "{{code}} is your verification code for {{tenant.friendly_name}}. "
    "Please enter this code to verify your enrollment.",
    "verification_message": "{{code}} is your verification code for {{tenant.friendly_name}}",
}
KEYS: dict[Purpose, str] = {
    "verification": "verification_message",
    "enrollment": "enrollment_message",
}
LOCALES = ("en", "de", "fr-CA")
_numbers = itertools.count(30)


def _sent_text(api: Api, tenant: str, purpose: Purpose, locale: str) -> str:
    to = f"+141555501{next(_numbers) % 70 + 30:02d}"
    body = {"to": to, "code": "123456", "purpose": purpose, "locale": locale}
    response = api.client.post(SEND, json=body, headers=api.auth(tenant, "create:phone_messages"))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "stored", response.text  # the outbox: the default sender
    outbox = OutboxProvider(api.settings.resolved_database_url)
    (message,) = outbox.messages(tenant, last=1)
    return message.text


def _all_sent(api: Api, tenant: str) -> dict[tuple[Purpose, str], str]:
    return {(p, locale): _sent_text(api, tenant, p, locale) for p in KEYS for locale in LOCALES}


def _get(api: Api, tenant: str) -> dict[str, Any]:
    response = api.client.get(TEMPLATES, headers=api.auth(tenant, "read:guardian_factors"))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _put(api: Api, tenant: str, body: dict[str, str]) -> dict[str, Any]:
    response = api.client.put(
        TEMPLATES, json=body, headers=api.auth(tenant, "update:guardian_factors")
    )
    assert response.status_code == 200, response.text
    saved: dict[str, Any] = response.json()
    return saved


@pytest.fixture
def tenant(store: ServiceStore) -> str:
    """A tenant of this test only, never given templates."""
    created = new_tenant()
    store.tenants.create(created)
    return created


def test_get_answers_auth0s_defaults_and_deliveries_the_localised_built_ins(
    api: Api, tenant: str
) -> None:
    assert _get(api, tenant) == AUTH0_DEFAULTS
    sent = _all_sent(api, tenant)
    assert sent["verification", "en"] == f"123456 is your verification code for {tenant}."
    assert sent["enrollment", "de"] == (
        f"123456 ist Ihr Bestätigungscode für {tenant}. Geben Sie diesen Code ein, um Ihre "
        "Registrierung zu bestätigen."
    )
    assert sent["verification", "fr-CA"].startswith("123456 est votre code de vérification")


def test_saving_the_reported_defaults_changes_nothing_a_delivery_sends(
    api: Api, tenant: str
) -> None:
    before = _all_sent(api, tenant)
    assert _put(api, tenant, _get(api, tenant)) == AUTH0_DEFAULTS
    assert _get(api, tenant) == AUTH0_DEFAULTS
    assert _all_sent(api, tenant) == before


def test_each_message_at_its_default_stays_localised(api: Api, tenant: str) -> None:
    """Customise one message: the other keeps the built-in in every language; PUT the
    defaults again: both are back to the localised built-ins."""
    before = _all_sent(api, tenant)
    custom = {**AUTH0_DEFAULTS, "verification_message": "Code {{ code }}"}
    assert _put(api, tenant, custom) == custom
    assert _get(api, tenant) == custom
    mixed = _all_sent(api, tenant)
    for (purpose, locale), text in mixed.items():
        expected = "Code 123456" if purpose == "verification" else before[purpose, locale]
        assert text == expected, (purpose, locale)

    everything = {"enrollment_message": "E {{ code }}", "verification_message": "V {{ code }}"}
    assert _put(api, tenant, everything) == everything
    assert _sent_text(api, tenant, "enrollment", "de") == "E 123456"
    assert _put(api, tenant, AUTH0_DEFAULTS) == AUTH0_DEFAULTS
    assert _get(api, tenant) == AUTH0_DEFAULTS
    assert _all_sent(api, tenant) == before


def test_a_text_that_differs_from_the_default_is_the_tenants_own(api: Api, tenant: str) -> None:
    """Only Auth0's exact default text means the default: another text, even one that renders
    the same English, is stored as given and sent as is, in every language."""
    spaced = {
        "enrollment_message": AUTH0_DEFAULTS["enrollment_message"],
        "verification_message": "{{ code }} is your verification code for "
        "{{ tenant.friendly_name }}.",
    }
    assert _put(api, tenant, spaced) == spaced
    assert _get(api, tenant) == spaced
    english = f"123456 is your verification code for {tenant}."
    assert _sent_text(api, tenant, "verification", "de") == english
