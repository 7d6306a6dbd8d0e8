"""The Templates page: editing a body updates the live preview (rendered by the service with
the sample code, per locale), a Liquid error shows next to its field with its line, and a
saved template is what the API then holds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, signed_in


def test_editing_a_template_updates_the_preview_and_saves_it(
    page: Page, console_server: ConsoleServer, screenshot: Callable[[Page, str], Path]
) -> None:
    tenant = console_server.tenant_a
    signed_in(page, console_server)
    page.get_by_test_id("nav-templates").click()
    preview = page.get_by_test_id("otp_verify-preview-text")
    expect(preview).to_have_text(f"123456 is your verification code for {tenant}.")
    body = page.get_by_test_id("otp_verify-text")
    body.fill(
        "{% if locale == 'fr' %}Votre code : {{ code }}{% else %}Your code: {{ code }}{% endif %}"
    )
    expect(preview).to_have_text("Your code: 123456")
    page.get_by_test_id("preview-locale").select_option("fr")
    expect(preview).to_have_text("Votre code : 123456")
    page.get_by_test_id("otp_verify-voice").fill("Say {{ code }}{{ pause }}again")
    expect(page.get_by_test_id("otp_verify-preview-voice")).to_have_text(
        "Say 1. 2. 3. 4. 5. 6... again"
    )
    page.get_by_test_id("otp_verify-save").click()
    expect(page.get_by_test_id("otp_verify-status")).to_have_text("Saved, enabled.")
    stored = console_server.request("GET", "/api/v2/branding/phone/templates", tenant=tenant)
    (template,) = [t for t in stored.json()["templates"] if t["type"] == "otp_verify"]
    assert template["content"]["body"]["voice"] == "Say {{ code }}{{ pause }}again"
    screenshot(page, "templates")
    page.reload()
    expect(page.get_by_test_id("otp_verify-voice")).to_have_value("Say {{ code }}{{ pause }}again")


def test_a_liquid_error_shows_next_to_its_field_with_its_line(
    page: Page, console_server: ConsoleServer
) -> None:
    signed_in(page, console_server, console_server.token(console_server.tenant_b))
    page.get_by_test_id("nav-templates").click()
    expect(page.get_by_test_id("otp_enroll-preview-text")).not_to_be_empty()
    voice = page.get_by_test_id("otp_enroll-voice")
    voice.fill("Your code\nis {{ code }}\n{% nosuchtag %}")
    error = page.get_by_test_id("template-otp_enroll").get_by_test_id("field-error")
    expect(error).to_contain_text("content.body.voice")
    expect(error).to_contain_text("at 3:")
    expect(voice).to_have_attribute("aria-invalid", "true")
    page.get_by_test_id("otp_enroll-save").click()  # the API refuses it too, next to the field
    expect(error).to_contain_text("at 3:")
    voice.fill("Your code is {{ code }}")
    expect(error).to_have_count(0)
    expect(page.get_by_test_id("otp_enroll-preview-voice")).to_have_text(
        "Your code is 1. 2. 3. 4. 5. 6"
    )
