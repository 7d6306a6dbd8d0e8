"""The Outbox page: a message sent into the outbox shows with its code and number masked, and
the evaluation cap's use is shown as text and as a meter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, signed_in


def test_a_held_message_shows_masked_with_the_cap_used(
    page: Page, console_server: ConsoleServer, screenshot: Callable[[Page, str], Path]
) -> None:
    tenant = console_server.tenant_a
    answer = console_server.request(
        "POST",
        "/api/v2/phone/messages",
        tenant=tenant,
        json={"to": "+14155552671", "code": "902817"},
    )
    assert answer.json()["status"] == "stored", answer.text
    used = console_server.request("GET", "/api/v2/phone/outbox", tenant=tenant).json()["used"]
    signed_in(page, console_server)
    page.get_by_test_id("nav-outbox").click()
    row = page.get_by_test_id("outbox-row").first
    expect(row.get_by_test_id("outbox-recipient")).to_have_text("+•••••••2671")
    expect(row.get_by_test_id("outbox-text")).to_contain_text("•••••• is your verification code")
    expect(page.get_by_test_id("outbox-used")).to_have_text(
        f"{used} of 100 evaluation messages used"
    )
    meter = page.get_by_role("meter", name=f"{used} of 100 evaluation messages used")
    expect(meter).to_have_attribute("value", str(used))
    expect(meter).to_have_attribute("max", "100")
    assert "902817" not in page.content()
    screenshot(page, "outbox")
