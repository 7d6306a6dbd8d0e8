"""The Phone message page: message types, the selected provider, the fallback policy and the
default country are saved through the API and kept across a reload (the default country is live
for the test message); a test message is sent and its report shown; credentials are never
prefilled."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, signed_in

GUARDIAN = "/api/v2/guardian/factors/phone"
SETTINGS = "/api/v2/phone/settings"


def test_message_types_and_provider_are_kept_after_a_reload(
    page: Page, console_server: ConsoleServer
) -> None:
    tenant = console_server.tenant_a
    signed_in(page, console_server)
    page.get_by_test_id("nav-phone").click()
    expect(page.get_by_test_id("type-sms")).to_be_checked()
    expect(page.get_by_test_id("type-voice")).not_to_be_checked()
    page.get_by_test_id("type-voice").check()
    page.get_by_test_id("save-message-types").click()
    expect(page.get_by_test_id("message-types").get_by_test_id("notice")).to_have_text(
        "Saved: SMS, voice."
    )
    page.get_by_test_id("provider-select").select_option("phone-message-hook")
    page.get_by_test_id("save-provider").click()
    expect(page.get_by_test_id("selected-provider").get_by_test_id("notice")).to_have_text(
        "Saved: Your action bound to send-phone-message (phone-message-hook)."
    )
    page.reload()
    expect(page.get_by_test_id("type-voice")).to_be_checked()
    expect(page.get_by_test_id("provider-select")).to_have_value("phone-message-hook")
    stored = console_server.request("GET", f"{GUARDIAN}/message-types", tenant=tenant).json()
    assert stored == {"message_types": ["sms", "voice"]}
    chosen = console_server.request("GET", f"{GUARDIAN}/selected-provider", tenant=tenant)
    assert chosen.json() == {"provider": "phone-message-hook"}
    # back to the default sender for the other tests of this module
    page.get_by_test_id("provider-select").select_option("auth0")
    page.get_by_test_id("save-provider").click()
    expect(page.get_by_test_id("selected-provider").get_by_test_id("notice")).to_have_text(
        "Saved: The default sender of this service (auth0)."
    )


def test_a_test_message_shows_its_report(
    page: Page, console_server: ConsoleServer, screenshot: Callable[[Page, str], Path]
) -> None:
    signed_in(page, console_server)
    page.get_by_test_id("nav-phone").click()
    page.get_by_test_id("test-to").fill("+14155552671")
    page.get_by_test_id("send-test").click()
    expect(page.get_by_test_id("report-status")).to_have_text("stored")
    expect(page.get_by_test_id("report-delivered-by")).to_have_text("outbox")
    expect(page.get_by_test_id("report-providers-tried")).to_have_text("outbox")
    screenshot(page, "phone-settings")
    page.get_by_test_id("test-to").fill("not a number")
    page.get_by_test_id("send-test").click()
    error = page.get_by_test_id("test-form").get_by_test_id("field-error")  # under its field
    expect(error).to_contain_text("letters are not read as digits")
    expect(error).not_to_contain_text("not a number")  # the value is never repeated
    expect(page.get_by_test_id("test-to")).to_have_attribute("aria-invalid", "true")


def test_credentials_are_write_only(page: Page, console_server: ConsoleServer) -> None:
    tenant = console_server.tenant_b
    body = {"sid": "AC" + "0" * 32, "auth_token": "s3cr3t-token-value"}
    answer = console_server.request("PUT", f"{GUARDIAN}/providers/twilio", tenant=tenant, json=body)
    assert answer.status_code == 200, answer.text
    signed_in(page, console_server, console_server.token(tenant))
    page.get_by_test_id("nav-phone").click()
    expect(page.get_by_label("Account SID").last).to_have_value("AC" + "0" * 32)
    expect(page.get_by_test_id("twilio-token")).to_have_value("")
    expect(page.get_by_test_id("upe-credentials")).to_have_text("Credentials: not set")
    page.get_by_label("Account SID").first.fill("AC" + "1" * 32)
    page.get_by_test_id("upe-token").fill("another-secret")
    page.get_by_test_id("save-upe").click()
    expect(page.get_by_test_id("upe-credentials")).to_have_text("Credentials: set")
    expect(page.get_by_test_id("upe-token")).to_have_value("")
    assert "s3cr3t-token-value" not in page.content()
    assert "another-secret" not in page.content()


def test_fallback_policy_and_default_country_are_kept_after_a_reload(
    page: Page, console_server: ConsoleServer
) -> None:
    tenant = console_server.tenant_a
    signed_in(page, console_server)
    page.get_by_test_id("nav-phone").click()
    expect(page.get_by_test_id("fallback-retryable")).to_be_checked()
    expect(page.get_by_test_id("default-country")).to_have_value("")
    # each value is explained next to its radio, and the radio is described by it
    expect(page.get_by_label("never")).to_have_accessible_description(
        "A failed message is reported failed; the default sender is not tried."
    )
    form = page.get_by_test_id("phone-settings-form")
    page.get_by_test_id("default-country").fill("ZZ")
    page.get_by_test_id("save-phone-settings").click()
    error = form.get_by_test_id("field-error")
    expect(error).to_contain_text("ISO 3166 alpha-2")
    expect(page.get_by_test_id("default-country")).to_have_attribute("aria-invalid", "true")
    assert console_server.request("GET", SETTINGS, tenant=tenant).json()["default_country"] is None
    page.get_by_test_id("fallback-always").check()
    page.get_by_test_id("default-country").fill("gb")
    page.get_by_test_id("save-phone-settings").click()
    expect(form.get_by_test_id("notice")).to_have_text(
        "Saved: fallback always, default country GB."
    )
    expect(error).to_have_count(0)
    expect(page.get_by_test_id("default-country")).to_have_value("GB")
    page.reload()
    expect(page.get_by_test_id("fallback-always")).to_be_checked()
    expect(page.get_by_test_id("fallback-retryable")).not_to_be_checked()
    expect(page.get_by_test_id("default-country")).to_have_value("GB")
    stored = console_server.request("GET", SETTINGS, tenant=tenant).json()
    assert stored == {"fallback": "always", "default_country": "GB"}
    other = console_server.request("GET", SETTINGS, tenant=console_server.tenant_b).json()
    assert other == {"fallback": "retryable", "default_country": None}
    # live at once: a national number is read as British
    page.get_by_test_id("test-to").fill("07400 123456")
    page.get_by_test_id("send-test").click()
    expect(page.get_by_test_id("report-status")).to_have_text("stored")
    # back to the defaults for the other tests of this module
    page.get_by_test_id("fallback-retryable").check()
    page.get_by_test_id("default-country").fill("")
    page.get_by_test_id("save-phone-settings").click()
    expect(form.get_by_test_id("notice")).to_have_text(
        "Saved: fallback retryable, default country none."
    )


def test_a_token_that_may_only_read_the_policy_sees_the_403_explained(
    page: Page, console_server: ConsoleServer
) -> None:
    token = console_server.token(console_server.tenant_a, "read:guardian_factors")
    signed_in(page, console_server, token)
    page.get_by_test_id("nav-phone").click()
    page.get_by_test_id("fallback-never").check()
    page.get_by_test_id("save-phone-settings").click()
    banner = page.get_by_test_id("phone-settings-form").get_by_test_id("page-error")
    expect(banner).to_contain_text("This token lacks the scope update:guardian_factors")
    stored = console_server.request("GET", SETTINGS).json()
    assert stored["fallback"] == "retryable"
