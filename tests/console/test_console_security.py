"""What the console must never do: hide a 403 (a token without a page's scope sees it
explained on the page), show another tenant's data (tenant A's token on the Actions, Logs and
Outbox pages), or render tenant text as HTML or raw control characters (logs, templates)."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import ALL_SCOPES, ConsoleServer, signed_in
from tests.console.test_logs_page import send, wait_for_logs

HOSTILE = '<img src=x onerror="window.pwned=1">\x1b[31m<script>x()</script>'
SHOWN = '<img src=x onerror="window.pwned=1">\u241b[31m<script>x()</script>'  # ESC made visible


def without(*missing: str) -> tuple[str, ...]:
    return tuple(scope for scope in ALL_SCOPES if scope not in missing)


@pytest.mark.parametrize(
    ("page_id", "scope"),
    [
        ("logs", "read:logs"),
        ("outbox", "read:phone_messages"),
        ("templates", "read:phone_templates"),
    ],
)
def test_a_token_without_the_pages_scope_sees_the_403_explained(
    page: Page, console_server: ConsoleServer, page_id: str, scope: str
) -> None:
    signed_in(page, console_server, console_server.token(None, *without(scope)))
    page.get_by_test_id(f"nav-{page_id}").click()
    expect(page.get_by_test_id("page-error").first).to_contain_text(
        f"This token lacks the scope {scope}"
    )


def test_the_phone_page_explains_each_refused_part_and_shows_the_others(
    page: Page, console_server: ConsoleServer
) -> None:
    token = console_server.token(None, *without("read:guardian_factors"))
    signed_in(page, console_server, token)
    page.get_by_test_id("nav-phone").click()
    for part in ("message-types", "selected-provider", "twilio-settings"):
        expect(page.get_by_test_id(part).get_by_test_id("page-error")).to_contain_text(
            "This token lacks the scope read:guardian_factors"
        )
    expect(page.get_by_test_id("upe-credentials")).to_have_text("Credentials: not set")
    expect(page.get_by_test_id("send-test")).to_be_visible()


def test_tenant_a_never_sees_tenant_bs_actions_logs_or_outbox(
    page: Page, console_server: ConsoleServer
) -> None:
    a, b = console_server.tenant_a, console_server.tenant_b
    mark = uuid.uuid4().hex[:8]
    for tenant in (a, b):
        created = console_server.request(
            "POST",
            "/api/v2/actions/actions",
            tenant=tenant,
            json={
                "name": f"{tenant}-{mark}",
                "supported_triggers": [{"id": "send-phone-message", "version": "v2"}],
                "code": "def on_execute_send_phone_message(event, api):\n    pass\n",
            },
        )
        assert created.status_code == 201, created.text
    send(console_server, a, "+14155550111", "204060")
    send(console_server, b, "+14155550777", "103050")
    wait_for_logs(console_server, a, 'user_name:"+14155550111"', 1)
    wait_for_logs(console_server, b, 'user_name:"+14155550777"', 1)

    signed_in(page, console_server)  # tenant A
    page.get_by_test_id("nav-actions").click()
    expect(page.get_by_test_id("action-row").filter(has_text=f"{a}-{mark}")).to_have_count(1)
    expect(page.locator("main")).not_to_contain_text(f"{b}-{mark}")
    page.get_by_test_id("nav-logs").click()
    expect(page.get_by_test_id("log-user").filter(has_text="+14155550111")).not_to_have_count(0)
    expect(page.locator("main")).not_to_contain_text("+14155550777")
    expect(page.locator("main")).not_to_contain_text(b)
    page.get_by_test_id("nav-outbox").click()
    expect(page.get_by_test_id("outbox-recipient").filter(has_text="0111")).not_to_have_count(0)
    expect(page.get_by_test_id("outbox-recipient").filter(has_text="0777")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text(b)


def test_log_and_template_text_with_html_and_control_characters_is_text(
    page: Page, console_server: ConsoleServer
) -> None:
    tenant = console_server.tenant_b
    user_id = f"{HOSTILE}{uuid.uuid4().hex[:6]}"
    enrolled = console_server.request(
        "POST",
        "/api/v2/phone/enrollments",
        tenant=tenant,
        json={"user_id": user_id, "phone_number": "+14155550188"},
    )
    assert enrolled.status_code == 201, enrolled.text
    wait_for_logs(console_server, tenant, "type:gd_start_enroll", 1)
    signed_in(page, console_server, console_server.token(tenant))
    page.get_by_test_id("nav-logs").click()
    page.get_by_label("Search").fill("type:gd_start_enroll")
    page.get_by_label("Search").press("Enter")
    row = page.get_by_test_id("log-row").first
    expect(row.get_by_test_id("log-user-id")).to_have_text(SHOWN + user_id[-6:])
    row.get_by_test_id("log-expand").click()
    expect(page.get_by_test_id("log-details").first).to_contain_text(
        '<img src=x onerror=\\"window.pwned=1\\">\\u001b[31m<script>x()</script>'
    )

    page.get_by_test_id("nav-templates").click()
    expect(page.get_by_test_id("otp_verify-preview-text")).not_to_be_empty()
    page.get_by_test_id("otp_verify-text").fill(HOSTILE + " {{ code }}\x07")
    expect(page.get_by_test_id("otp_verify-preview-text")).to_have_text(SHOWN + " 123456\u2407")

    main = page.locator("main")
    expect(main.locator("img")).to_have_count(0)
    expect(main.locator("script")).to_have_count(0)
    assert page.evaluate("window.pwned") is None
