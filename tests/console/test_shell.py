"""The console's shell: served with a strict CSP, signing in with a token, the navigation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, signed_in

NAV = ["Actions", "Phone message", "Templates", "Logs", "Outbox"]


def test_console_page_is_served_with_a_strict_csp(console_server: ConsoleServer) -> None:
    for path in ("/console", "/console/"):
        answer = httpx.get(f"{console_server.base_url}{path}", timeout=30)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/html")
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert '<script type="module" src="/console/static/app.js">' in answer.text
    module = httpx.get(f"{console_server.base_url}/console/static/app.js", timeout=30)
    assert module.status_code == 200
    assert "javascript" in module.headers["content-type"]
    missing = httpx.get(f"{console_server.base_url}/console/static/nope.js", timeout=30)
    assert missing.status_code == 404


def test_sign_in_shows_the_navigation_and_the_tenant(
    page: Page, console_server: ConsoleServer, screenshot: Callable[[Page, str], Path]
) -> None:
    page.goto(console_server.console_url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(page, "sign-in")
    signed_in(page, console_server)
    nav = page.get_by_role("navigation", name="Pages")
    expect(nav.get_by_role("link")).to_have_text(NAV)
    expect(page.get_by_test_id("nav-actions")).to_have_attribute("aria-current", "page")
    expect(page.get_by_test_id("who")).to_have_text(f"Tenant {console_server.tenant_a}")
    assert page.url.endswith("#/actions")


def test_a_token_the_api_refuses_is_explained_next_to_the_field(
    page: Page, console_server: ConsoleServer
) -> None:
    page.goto(console_server.console_url)
    token = page.get_by_label("Management API token")
    token.fill("not-a-token")
    token.press("Enter")  # Enter submits the form
    expect(page.get_by_test_id("field-error")).to_have_text(
        "This is not a token (a JWT: three parts separated by dots)."
    )
    expect(token).to_have_attribute("aria-invalid", "true")
    forged = console_server.token().rsplit(".", 1)[0] + ".AAAA"
    token.fill(forged)
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("field-error")).to_contain_text("The API refused this token")
    expect(page.get_by_test_id("nav-actions")).to_be_hidden()


def test_sign_out_forgets_the_token(page: Page, console_server: ConsoleServer) -> None:
    signed_in(page, console_server)
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('phone-actions-token')") is None


def test_the_first_tab_offers_skip_to_content(page: Page, console_server: ConsoleServer) -> None:
    signed_in(page, console_server)
    page.reload()  # the token stays for this tab; nothing has the focus yet
    expect(page.get_by_test_id("nav-actions")).to_be_visible()
    # the page's own controls are there before the keys (it loads them from the API)
    expect(page.get_by_test_id("new-action-name")).to_be_visible()
    expect(page.get_by_test_id("loading")).to_have_count(0)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()
    page.keyboard.press("Tab")  # then the page's own controls, not the navigation
    expect(page.get_by_test_id("nav-actions")).not_to_be_focused()
    assert page.evaluate("document.activeElement.closest('main') !== null")


def test_a_token_refused_later_brings_the_sign_in_back_with_the_reason(
    page: Page, console_server: ConsoleServer
) -> None:
    signed_in(page, console_server)
    forged = console_server.token().rsplit(".", 1)[0] + ".AAAA"  # as if expired or revoked
    page.evaluate("(t) => sessionStorage.setItem('phone-actions-token', t)", forged)
    page.get_by_test_id("nav-logs").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_test_id("sign-in-form").get_by_role("alert")).to_contain_text(
        "Signed out: the API refused the token"
    )
    assert page.evaluate("sessionStorage.getItem('phone-actions-token')") is None
    signed_in(page, console_server)  # and signing in again works
    expect(page.get_by_test_id("nav-logs")).to_be_visible()
