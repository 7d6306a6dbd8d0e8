"""POST /api/v2/branding/phone/templates/preview renders a template's bodies with the sample
code, with the renderer deliveries use, and sends nothing; a body that saving would refuse is
a 400 naming the field and the line. Scope ``read:phone_templates``. SQLite and PostgreSQL."""

from __future__ import annotations

from plugins.outbox import OutboxProvider
from tests.api.conftest import Api
from tests.api.test_guardian import assert_error

PREVIEW = "/api/v2/branding/phone/templates/preview"
READ = "read:phone_templates"


def test_renders_text_and_voice_with_the_sample_code_and_sends_nothing(api: Api) -> None:
    body = {
        "type": "otp_verify",
        "content": {
            "body": {
                "text": "{% if locale == 'fr' %}Code {{ code }}{% else %}Your code {{ code }}"
                "{% endif %} for {{ tenant.friendly_name }}",
                "voice": "Say {{ code }}",
            }
        },
        "locale": "fr",
    }
    before = OutboxProvider(api.settings.resolved_database_url).messages(api.tenant_a)
    response = api.client.post(PREVIEW, json=body, headers=api.auth(api.tenant_a, READ))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "type": "otp_verify",
        "locale": "fr",
        "code": "123456",
        "text": f"Code 123456 for {api.tenant_a}",
        "voice": "Say 1. 2. 3. 4. 5. 6",
    }
    after = OutboxProvider(api.settings.resolved_database_url).messages(api.tenant_a)
    assert after == before


def test_a_missing_body_previews_what_deliveries_send(api: Api) -> None:
    """A tenant without templates: the built-in enrollment message, in the locale's language
    (tests/api/test_preview_matches_delivery.py compares it with real deliveries)."""
    headers = api.auth(api.tenant_a, READ)
    response = api.client.post(PREVIEW, json={"type": "otp_enroll"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["text"] == (
        f"123456 is your verification code for {api.tenant_a}. "
        "Please enter this code to verify your enrollment."
    )
    german = api.client.post(PREVIEW, json={"type": "otp_enroll", "locale": "de"}, headers=headers)
    assert german.json()["voice"] == (
        f"Ihr Registrierungscode für {api.tenant_a} lautet 1. 2. 3. 4. 5. 6."
    )


def test_bad_liquid_is_400_naming_the_field_and_line(api: Api) -> None:
    headers = api.auth(api.tenant_a, READ)
    broken = {"type": "otp_verify", "content": {"body": {"voice": "{{ code }}\n{% nosuch %}"}}}
    error = assert_error(api.client.post(PREVIEW, json=broken, headers=headers), 400)
    assert error["message"].startswith("content.body.voice: ")
    assert "at 2:" in error["message"]
    no_code = {"type": "otp_verify", "content": {"body": {"text": "Hello"}}}
    error = assert_error(api.client.post(PREVIEW, json=no_code, headers=headers), 400)
    assert error["message"].startswith("content.body.text: ")
    assert_error(api.client.post(PREVIEW, json={"type": "nope"}, headers=headers), 400, "type")
    assert_error(
        api.client.post(PREVIEW, json={"type": "otp_verify", "x": 1}, headers=headers), 400, "x"
    )


def test_scope_and_tenant(api: Api) -> None:
    other = api.auth(api.tenant_a, "update:phone_templates")
    assert_error(api.client.post(PREVIEW, json={"type": "otp_verify"}, headers=other), 403, READ)
    assert_error(api.client.post(PREVIEW, json={"type": "otp_verify"}), 401)
    theirs = api.client.post(
        PREVIEW, json={"type": "otp_verify"}, headers=api.auth(api.tenant_b, READ)
    )
    assert theirs.json()["text"] == f"123456 is your verification code for {api.tenant_b}."


def test_the_openapi_document_lists_both_new_endpoints(api: Api) -> None:
    paths = api.client.get("/api/v2/openapi.json").json()["paths"]
    assert "post" in paths[PREVIEW]
    assert "get" in paths["/api/v2/phone/outbox"]
