"""Found by a review of the console as an attacker and as a new user: a hand-made link with an
id of dots must not make the page read another resource as an action, and opening the console
asks the service for nothing it does not have (a browser's /favicon.ico 404 was the only line
in the browser console of a clean start); one message is "1 message attempt"."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, signed_in
from tests.console.test_logs_page import send, wait_for_logs


@pytest.mark.parametrize("dots", [".", "..", "%2e", "%2E%2e"])
def test_an_action_id_of_dots_is_no_action(
    page: Page, console_server: ConsoleServer, dots: str
) -> None:
    seen: list[str] = []
    page.on("request", lambda request: seen.append(str(request.url)))
    signed_in(page, console_server)
    seen.clear()
    page.goto(f"{console_server.console_url}#/actions/{dots}")
    expect(page.get_by_test_id("page-error")).to_have_text(
        "No such action (it may have been deleted)."
    )
    expect(page.get_by_test_id("save")).to_have_count(0)
    assert [url for url in seen if "/api/" in url] == []  # nothing asked, nothing misread


def test_a_link_with_bad_percent_encoding_leaves_the_console_working(
    page: Page, console_server: ConsoleServer
) -> None:
    """``#/actions/%E0%A4`` once threw a URIError and left "Loading…" forever."""
    signed_in(page, console_server)
    page.goto(f"{console_server.console_url}#/actions/%E0%A4%A")
    expect(page.get_by_test_id("page-error")).to_have_text(
        "No such action (it may have been deleted)."
    )
    page.goto(f"{console_server.console_url}#/%ZZ")
    expect(page.get_by_test_id("create-form")).to_be_visible()  # the default page, #/actions
    expect(page.get_by_test_id("nav-actions")).to_have_attribute("aria-current", "page")


def test_opening_and_signing_in_meets_no_error_answer(
    page: Page, console_server: ConsoleServer
) -> None:
    failed: list[str] = []

    def on_response(response: Any) -> None:
        if response.status >= 400:
            failed.append(f"{response.status} {response.url}")

    page.on("response", on_response)
    urls: list[str] = []
    page.on("request", lambda request: urls.append(str(request.url)))
    # requests the browser makes itself (the favicon) show only as a console error
    page.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
    signed_in(page, console_server)
    shown = {  # something each page shows once all its calls have answered
        "templates": page.get_by_test_id("otp_verify-preview-state"),
        "logs": page.get_by_test_id("chart-summary"),
        "outbox": page.get_by_test_id("outbox-used"),
    }
    for page_id, ready in shown.items():
        page.get_by_test_id(f"nav-{page_id}").click()
        expect(ready).not_to_be_empty()
        expect(page.get_by_test_id("page-error")).to_have_count(0)
    assert failed == []
    token = page.evaluate("sessionStorage.getItem('phone-actions-token')")
    assert token
    assert urls
    assert not [url for url in urls if token in url or token[-20:] in url]  # never in a URL
    assert token not in page.content()  # nor left in the page (the sign-in input is gone)


def test_the_chart_counts_one_message_in_the_singular(
    page: Page, console_server: ConsoleServer
) -> None:
    tenant = console_server.tenant_b  # no other test of this module sends for it
    send(console_server, tenant, "+14155550142", "314159")
    wait_for_logs(console_server, tenant, "type:gd_send_sms", 1)
    signed_in(page, console_server, console_server.token(tenant))
    page.get_by_test_id("nav-logs").click()
    expect(page.get_by_test_id("chart-summary")).to_contain_text(
        "1 message attempt in the last 24 hours,"
    )
