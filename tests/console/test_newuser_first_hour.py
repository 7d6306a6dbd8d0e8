"""What tripped a new user in the console's first hour, kept fixed: provider choices in plain
words (Auth0's raw value second), a trigger binding that says it does not by itself put the
action in the path of deliveries, and field errors without the validator's wrapping."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, signed_in


def test_provider_choices_read_as_words_with_the_raw_value_second(
    page: Page, console_server: ConsoleServer
) -> None:
    signed_in(page, console_server, console_server.token(console_server.tenant_b))
    page.get_by_test_id("nav-phone").click()
    options = page.get_by_test_id("provider-select").locator("option")
    expect(options).to_have_text(
        [
            "The default sender of this service (auth0)",
            "Twilio, with the Twilio settings below (twilio)",
            "Your action bound to send-phone-message (phone-message-hook)",
        ]
    )
    expect(page.get_by_test_id("upe-name").locator("option")).to_have_text(
        ["Twilio (twilio)", "Your action bound to custom-phone-provider (custom)"]
    )
    # the values sent to the API stay Auth0's
    expect(page.get_by_test_id("provider-select")).to_have_value("auth0")
    # the hint says what the chosen provider needs, not always the action's needs
    select = page.get_by_test_id("provider-select")
    hint = page.locator(f"#{select.get_attribute('aria-describedby')}")
    expect(hint).to_contain_text("Nothing to set up")
    page.get_by_test_id("provider-select").select_option("twilio")
    expect(hint).to_contain_text("Twilio settings below")
    page.get_by_test_id("provider-select").select_option("phone-message-hook")
    expect(hint).to_contain_text("deployed and bound to send-phone-message")


def test_a_national_number_is_explained_without_the_validators_wrapping(
    page: Page, console_server: ConsoleServer
) -> None:
    signed_in(page, console_server, console_server.token(console_server.tenant_b))
    page.get_by_test_id("nav-phone").click()
    page.get_by_test_id("test-to").fill("4155552671")
    page.get_by_test_id("send-test").click()
    error = page.get_by_test_id("test-form").get_by_test_id("field-error")
    expect(error).to_contain_text("has no country code")
    expect(error).not_to_contain_text("Payload validation error")
    expect(error).not_to_contain_text("Value error")
    expect(page.get_by_test_id("test-to")).to_have_attribute("aria-invalid", "true")


def test_the_binding_card_says_when_deliveries_run_the_action(
    page: Page, console_server: ConsoleServer
) -> None:
    tenant = console_server.tenant_b
    created = console_server.request(
        "POST",
        "/api/v2/actions/actions",
        tenant=tenant,
        json={
            "name": "first-hour",
            "supported_triggers": [{"id": "send-phone-message", "version": "v2"}],
        },
    )
    assert created.status_code == 201, created.text
    signed_in(page, console_server, console_server.token(tenant))
    page.goto(f"{console_server.console_url}#/actions/{created.json()['id']}")
    when = page.get_by_test_id("binding-when")
    expect(when).to_contain_text("Deliveries run them only while the Phone message page")
    expect(when).to_contain_text("(phone-message-hook)")
    when.get_by_role("link", name="Phone message").click()
    expect(page.get_by_test_id("provider-select")).to_be_visible()


def test_field_messages_lose_only_the_wrapping(page: Page, console_server: ConsoleServer) -> None:
    page.goto(console_server.console_url)
    cases = [
        "Payload validation error: to: Value error, '415' has no country code",
        "Payload validation error: 'Value error, must be an ISO 3166 code' on property "
        "default_country.",
        "Payload validation error: 'Field required' on property name.",
        "content.body.voice: unexpected tag 'nosuchtag' at 3:1",
        "Payload validation error: 'has no country code: ... or set the tenant's "
        "default_country' on property to.",
        "Payload validation error: 'x' on property secrets[1].value; 'y' on property code.",
    ]
    found = page.evaluate(
        """async (cases) => {
            const dom = await import("/console/static/lib/dom.js");
            return cases.map((c) => dom.fieldMessage(c));
        }""",
        cases,
    )
    assert found == [
        "to: '415' has no country code",
        "must be an ISO 3166 code",
        "Field required",
        "content.body.voice: unexpected tag 'nosuchtag' at 3:1",
        "has no country code: ... or set the tenant's default_country",
        "x",
    ]


def test_a_failed_test_message_says_where_to_act(page: Page, console_server: ConsoleServer) -> None:
    tenant = console_server.tenant_b
    chosen = console_server.request(
        "PUT",
        "/api/v2/guardian/factors/phone/selected-provider",
        tenant=tenant,
        json={"provider": "twilio"},  # and no Twilio settings: the delivery fails
    )
    assert chosen.status_code == 200, chosen.text
    try:
        signed_in(page, console_server, console_server.token(tenant))
        page.get_by_test_id("nav-phone").click()
        page.get_by_test_id("test-to").fill("+14155552671")
        page.get_by_test_id("send-test").click()
        expect(page.get_by_test_id("report-status")).to_have_text("failed")
        expect(page.get_by_test_id("report-next")).to_contain_text("Complete its settings")
    finally:
        console_server.request(
            "PUT",
            "/api/v2/guardian/factors/phone/selected-provider",
            tenant=tenant,
            json={"provider": "auth0"},
        )


def test_a_missing_scope_prints_the_token_command_that_keeps_the_others(
    page: Page, console_server: ConsoleServer
) -> None:
    tenant = console_server.tenant_b
    signed_in(page, console_server, console_server.token(tenant, "read:logs"))
    page.get_by_test_id("nav-outbox").click()
    expect(page.get_by_test_id("page-error")).to_contain_text(
        f'phone-actions token create --tenant {tenant} --scope "read:logs read:phone_messages"'
    )


def test_an_empty_outbox_says_how_to_fill_it(page: Page, console_server: ConsoleServer) -> None:
    signed_in(page, console_server, console_server.token(console_server.tenant_b))
    page.get_by_test_id("nav-outbox").click()
    empty = page.get_by_test_id("outbox-empty")
    expect(empty).to_contain_text("send one with Send a test message")
    empty.get_by_role("link", name="Phone message").click()
    expect(page.get_by_test_id("send-test")).to_be_visible()


def test_a_refused_token_says_which_tokens_work(page: Page, console_server: ConsoleServer) -> None:
    page.goto(console_server.console_url)
    forged = console_server.token().rsplit(".", 1)[0] + ".AAAA"
    page.get_by_label("Management API token").fill(forged)
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("field-error")).to_contain_text(
        "Use one this service made and that has not expired"
    )


def test_a_refused_test_message_names_the_rule_not_a_provider(
    page: Page, console_server: ConsoleServer
) -> None:
    signed_in(page, console_server, console_server.token(console_server.tenant_b))
    page.get_by_test_id("nav-phone").click()
    page.get_by_test_id("test-to").fill("+14155552671")
    page.get_by_test_id("test-method").select_option("voice")  # voice is not enabled
    page.get_by_test_id("send-test").click()
    expect(page.get_by_test_id("report-status")).to_have_text("rejected")
    expect(page.get_by_test_id("report-next")).to_contain_text(
        "Refused before any provider was tried"
    )
