"""GET /api/v2/guardian/factors/phone/templates reports, until a tenant sets its own, the SMS
templates deliveries really use: rendered, each gives the text a delivery sends, and saving
them back as the tenant's own changes nothing a delivery sends. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from plugins.outbox import OutboxProvider
from runtime import templates
from runtime.events import Purpose
from tests.api.conftest import Api

TEMPLATES = "/api/v2/guardian/factors/phone/templates"
SEND = "/api/v2/phone/messages"
KEYS: dict[Purpose, str] = {
    "verification": "verification_message",
    "enrollment": "enrollment_message",
}


def _sent_text(api: Api, tenant: str, purpose: Purpose, to: str) -> str:
    body = {"to": to, "code": "123456", "purpose": purpose}
    response = api.client.post(SEND, json=body, headers=api.auth(tenant, "create:phone_messages"))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "stored", response.text  # the outbox: the default sender
    outbox = OutboxProvider(api.settings.resolved_database_url)
    (message,) = outbox.messages(tenant, last=1)
    return message.text


@pytest.mark.parametrize("purpose", list(KEYS))
def test_the_reported_default_renders_to_what_a_delivery_sends(api: Api, purpose: Purpose) -> None:
    tenant = api.tenant_a  # never given templates in this module
    reported = api.client.get(TEMPLATES, headers=api.auth(tenant, "read:guardian_factors"))
    assert reported.status_code == 200, reported.text
    rendered = templates.render(
        reported.json()[KEYS[purpose]],
        channel="sms",
        purpose=purpose,
        code="123456",
        locale="en",
        tenant_id=tenant,
        tenant_name=tenant,
    )
    sent = _sent_text(api, tenant, purpose, "+14155550121")
    assert rendered == sent
    if purpose == "verification":
        assert sent == f"123456 is your verification code for {tenant}."


def test_saving_the_reported_defaults_changes_nothing_a_delivery_sends(api: Api) -> None:
    tenant = api.tenant_b
    before = {p: _sent_text(api, tenant, p, "+14155550122") for p in KEYS}
    reported = api.client.get(TEMPLATES, headers=api.auth(tenant, "read:guardian_factors"))
    saved = api.client.put(
        TEMPLATES, json=reported.json(), headers=api.auth(tenant, "update:guardian_factors")
    )
    assert saved.status_code == 200, saved.text
    after = {p: _sent_text(api, tenant, p, "+14155550123") for p in KEYS}
    assert after == before
