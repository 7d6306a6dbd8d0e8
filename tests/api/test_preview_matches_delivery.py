"""POST /api/v2/branding/phone/templates/preview answers the text a real delivery of that type,
locale and channel sends: the built-in messages in the locale's language for a tenant without
templates, the tenant's guardian and phone templates (and its friendly name) for one with
them. Each preview is compared with what the pipeline handed to the sender and, for SMS, with
what the outbox (the default sender) stored. The default bodies of ``otp_verify`` and
``otp_enroll`` (creating one without content, resetting one) change nothing a delivery sends,
in any language. SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from plugins.outbox import OutboxProvider
from runtime import hookimpl, templates
from runtime.events import Channel, Purpose
from runtime.store.service import ServiceStore
from runtime.store.service.phone_templates import BUILT_IN_SOURCES
from tests.api.conftest import Api, new_tenant

PREVIEW = "/api/v2/branding/phone/templates/preview"
TEMPLATES = "/api/v2/branding/phone/templates"
GUARDIAN = "/api/v2/guardian/factors/phone"
SEND = "/api/v2/phone/messages"
SCOPES = (
    "read:phone_templates",
    "create:phone_templates",
    "update:phone_templates",
    "update:guardian_factors",
    "create:phone_messages",
)
TYPES: dict[Purpose, str] = {"enrollment": "otp_enroll", "verification": "otp_verify"}
KEYS: dict[Channel, str] = {"sms": "text", "voice": "voice"}
LOCALES = ("en", "de", "de-AT", "fr_CA", "es", "pt-BR")
_numbers = itertools.count(20)


class _Capture:
    """A before_send plugin that keeps each message's text and lets it go on."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    @hookimpl
    def before_send(self, message: Any) -> str | None:
        self.texts.append(message.text)
        return None


@pytest.fixture(scope="module")
def capture(api: Api) -> Iterator[_Capture]:
    manager = api.client.app.state.services.pipeline.plugin_manager  # type: ignore[attr-defined]
    plugin = _Capture()
    manager.register(plugin)
    yield plugin
    manager.unregister(plugin)


def _headers(api: Api, tenant: str) -> dict[str, str]:
    return api.auth(tenant, *SCOPES)


def _fresh_tenant(api: Api, store: ServiceStore) -> str:
    """A tenant named Fresh, with SMS and voice enabled and no templates."""
    tenant = new_tenant()
    store.tenants.create(tenant, "Fresh")
    types = {"message_types": ["sms", "voice"]}
    put = api.client.put(f"{GUARDIAN}/message-types", json=types, headers=_headers(api, tenant))
    assert put.status_code == 200, put.text
    return tenant


def _delivered(
    api: Api, capture: _Capture, tenant: str, channel: Channel, purpose: Purpose, locale: str
) -> str:
    """The text a real delivery hands to the sender (and, for SMS, the outbox stores)."""
    to = f"+141555501{next(_numbers) % 80 + 20:02d}"
    body = {"to": to, "code": "123456", "channel": channel, "purpose": purpose, "locale": locale}
    before = len(capture.texts)
    response = api.client.post(SEND, json=body, headers=_headers(api, tenant))
    assert response.status_code in (200, 502), response.text
    assert len(capture.texts) == before + 1, response.text
    sent = capture.texts[-1]
    if channel == "sms":
        assert response.json()["status"] == "stored", response.text
        outbox = OutboxProvider(api.settings.resolved_database_url)
        (message,) = outbox.messages(tenant, last=1)
        assert message.text == sent
    return sent


def _preview(api: Api, tenant: str, kind: str, locale: str, **body: str) -> dict[str, Any]:
    request: dict[str, Any] = {"type": kind, "locale": locale}
    if body:
        request["content"] = {"body": body}
    response = api.client.post(PREVIEW, json=request, headers=_headers(api, tenant))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _assert_preview_is_what_is_sent(api: Api, capture: _Capture, tenant: str) -> None:
    for purpose, kind in TYPES.items():
        for locale in LOCALES:
            shown = _preview(api, tenant, kind, locale)
            for channel, key in KEYS.items():
                sent = _delivered(api, capture, tenant, channel, purpose, locale)
                assert shown[key] == sent, (kind, locale, channel)


def test_without_templates_the_preview_is_the_localised_built_in(
    api: Api, store: ServiceStore, capture: _Capture
) -> None:
    tenant = _fresh_tenant(api, store)
    _assert_preview_is_what_is_sent(api, capture, tenant)
    german = _preview(api, tenant, "otp_enroll", "de")
    assert german["text"] == (
        "123456 ist Ihr Bestätigungscode für Fresh. Geben Sie diesen Code ein, um Ihre "
        "Registrierung zu bestätigen."
    )
    english = _preview(api, tenant, "otp_enroll", "en")
    assert english["text"] == (
        "123456 is your verification code for Fresh. Please enter this code to verify your "
        "enrollment."
    )
    assert english["voice"] == "Your enrollment code for Fresh is 1. 2. 3. 4. 5. 6."


def test_with_templates_the_preview_is_the_tenants_template(
    api: Api, store: ServiceStore, capture: _Capture
) -> None:
    tenant = _fresh_tenant(api, store)
    headers = _headers(api, tenant)
    guardian = {  # SMS of both purposes; the enrollment one is then replaced by otp_enroll's
        "enrollment_message": "Enrol with {{ code }}",
        "verification_message": "{% if locale contains 'de' %}Ihr Code {{ code }}"
        "{% else %}Code {{ code }} for {{ tenant.friendly_name }}{% endif %}",
    }
    put = api.client.put(f"{GUARDIAN}/templates", json=guardian, headers=headers)
    assert put.status_code == 200, put.text
    enroll = {
        "text": "{% if locale == 'de' %}Anmeldung: {{ code }}{% else %}Enrolment: {{ code }}"
        "{% endif %} ({{ friendly_name }})",
        "voice": "{{ tenant.friendly_name }} says {{ code }}{{ pause }}{{ locale }}",
    }
    created = api.client.post(
        TEMPLATES, json={"type": "otp_enroll", "content": {"body": enroll}}, headers=headers
    )
    assert created.status_code == 201, created.text
    verify = {"type": "otp_verify", "content": {"body": {"voice": "Say {{ code }} twice"}}}
    created = api.client.post(TEMPLATES, json=verify, headers=headers)
    assert created.status_code == 201, created.text
    _assert_preview_is_what_is_sent(api, capture, tenant)
    assert _preview(api, tenant, "otp_verify", "de")["text"] == "Ihr Code 123456"
    assert _preview(api, tenant, "otp_verify", "en")["text"] == "Code 123456 for Fresh"
    assert _preview(api, tenant, "otp_enroll", "de")["text"] == "Anmeldung: 123456 (Fresh)"

    disabled = api.client.patch(
        f"{TEMPLATES}/{created.json()['id']}", json={"disabled": True}, headers=headers
    )
    assert disabled.status_code == 200, disabled.text
    shown = _preview(api, tenant, "otp_verify", "de")  # a disabled template is not sent
    assert shown["voice"] == _delivered(api, capture, tenant, "voice", "verification", "de")
    assert shown["voice"] == "Ihr Bestätigungscode für Fresh lautet 1. 2. 3. 4. 5. 6."


def test_a_body_given_previews_what_it_sends_once_saved(
    api: Api, store: ServiceStore, capture: _Capture
) -> None:
    tenant = _fresh_tenant(api, store)
    body = {"text": "{{ locale }}: {{ code }}", "voice": "{{ code }} ({{ message_type }})"}
    shown = {locale: _preview(api, tenant, "otp_verify", locale, **body) for locale in LOCALES}
    created = api.client.post(
        TEMPLATES,
        json={"type": "otp_verify", "content": {"body": body}},
        headers=_headers(api, tenant),
    )
    assert created.status_code == 201, created.text
    for locale in LOCALES:
        for channel, key in KEYS.items():
            sent = _delivered(api, capture, tenant, channel, "verification", locale)
            assert shown[locale][key] == sent


def test_default_phone_templates_send_the_localised_built_ins(
    api: Api, store: ServiceStore, capture: _Capture
) -> None:
    """Creating otp_verify and otp_enroll without content, then resetting one after a change,
    leaves every delivery as it was, German and French included."""
    tenant = _fresh_tenant(api, store)
    headers = _headers(api, tenant)
    before = {
        (purpose, channel, locale): _delivered(api, capture, tenant, channel, purpose, locale)
        for purpose in TYPES
        for channel in KEYS
        for locale in ("en", "de", "fr")
    }
    ids = {}
    for purpose, kind in TYPES.items():
        created = api.client.post(TEMPLATES, json={"type": kind}, headers=headers)
        assert created.status_code == 201, created.text
        ids[kind] = created.json()["id"]
        defaults = {key: BUILT_IN_SOURCES[channel, purpose] for channel, key in KEYS.items()}
        assert created.json()["content"]["body"] == defaults
    changed = {"content": {"body": {"text": "Hi {{ code }}"}}}
    url = f"{TEMPLATES}/{ids['otp_enroll']}"
    assert api.client.patch(url, json=changed, headers=headers).status_code == 200
    assert _delivered(api, capture, tenant, "sms", "enrollment", "de") == "Hi 123456"
    assert api.client.patch(f"{url}/reset", headers=headers).status_code == 200
    after = {
        (purpose, channel, locale): _delivered(api, capture, tenant, channel, purpose, locale)
        for purpose, channel, locale in before
    }
    assert after == before
    assert after["enrollment", "sms", "de"].startswith("123456 ist Ihr Bestätigungscode")


@pytest.mark.parametrize(("channel", "purpose"), sorted(BUILT_IN_SOURCES))
def test_the_built_in_sources_render_as_the_built_ins(channel: Channel, purpose: Purpose) -> None:
    """Every language, and locales written every way locale_chain reads them."""
    source = BUILT_IN_SOURCES[channel, purpose]
    assert templates.check(source, channel, purpose) is None
    locales = [
        *templates.LOCALISED_TEMPLATES,
        *("DE", "de-DE", "de_AT", "fr-CA", "fr_ca.UTF-8", "es@euro", " es ", "ES-mx", "Fr"),
        *("-de", "de--AT", "de.", "@de", ".", "zz-de", "1de", "de x", "\tde-", "pt-BR", "xx"),
    ]
    for locale in locales:
        built_in, liquid = (
            templates.render(
                given,
                channel=channel,
                purpose=purpose,
                code="123456",
                locale=locale,
                tenant_id="t",
                tenant_name="Fresh & <Co>",
            )
            for given in (None, source)
        )
        assert liquid == built_in, locale
