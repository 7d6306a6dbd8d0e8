"""The Logs page: deliveries made through the API show up in the table, a search finds them,
a row expands to its event's JSON, and the chart counts them in the current hour."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, signed_in

STORED_WITHIN = 60.0
"""Seconds the stored log may take to show an event (it lags the report by a round trip)."""


def wait_for_logs(server: ConsoleServer, tenant: str, q: str, count: int) -> list[dict[str, Any]]:
    """The tenant's events matching ``q`` once there are ``count`` of them (the stored log is
    copied from the JSON Lines file a moment after each report)."""
    deadline = time.monotonic() + STORED_WITHIN
    while True:
        found: list[dict[str, Any]] = server.request(
            "GET", "/api/v2/logs", tenant=tenant, params={"q": q, "per_page": 100}
        ).json()
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) >= count, found
            return found
        time.sleep(0.1)  # polling the condition above, not waiting for time to pass


def send(server: ConsoleServer, tenant: str, to: str, code: str) -> None:
    answer = server.request(
        "POST", "/api/v2/phone/messages", tenant=tenant, json={"to": to, "code": code}
    )
    assert answer.status_code == 200, answer.text


def test_deliveries_show_up_are_searchable_expandable_and_charted(
    page: Page, console_server: ConsoleServer, screenshot: Callable[[Page, str], Path]
) -> None:
    tenant = console_server.tenant_a
    before = console_server.request(
        "GET", "/api/v2/logs", tenant=tenant, params={"q": "type:gd_send_sms"}
    ).json()
    for code in ("111222", "333444", "555666"):
        send(console_server, tenant, "+14155550199", code)
    send(console_server, tenant, "+14155550123", "777888")
    wait_for_logs(console_server, tenant, "type:gd_send_sms", len(before) + 4)
    signed_in(page, console_server)
    page.get_by_test_id("nav-logs").click()
    rows = page.get_by_test_id("log-row")
    expect(rows).to_have_count(len(before) + 4)
    expect(rows.first.get_by_test_id("log-type")).to_have_text("gd_send_sms")
    expect(rows.first.get_by_test_id("log-description")).to_have_text(
        "MFA SMS stored, not sent to a phone (outbox)"
    )

    page.get_by_label("Search").fill('user_name:"+14155550199"')
    page.get_by_label("Search").press("Enter")
    expect(rows).to_have_count(3)
    expect(rows.get_by_test_id("log-user")).to_have_text(["+14155550199"] * 3)
    expect(page.get_by_test_id("logs-count")).to_have_text("Events 1 to 3 of 3.")

    button = rows.first.get_by_test_id("log-expand")
    expect(button).to_have_attribute("aria-expanded", "false")
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    details = page.get_by_test_id("log-details").first
    expect(details).to_be_visible()
    event = json.loads(details.inner_text())
    assert event["user_name"] == "+14155550199"
    assert event["details"]["provider"] == "outbox"
    assert "111222" not in details.inner_text()

    # the chart's row of the hour of the newest delivery counts every delivery of that hour
    events = wait_for_logs(console_server, tenant, "type:gd_send_sms", len(before) + 4)
    hour = events[0]["date"][11:13]
    in_hour = sum(1 for e in events if e["date"][:13] == events[0]["date"][:13])
    row = page.get_by_test_id("chart-table").locator("tr", has=page.get_by_text(f"{hour}:00"))
    expect(row.locator("td").last).to_have_text(str(in_hour))
    expect(page.get_by_test_id("chart-summary")).to_contain_text(f"stored · outbox: {len(events)}")
    svg = page.get_by_test_id("chart-svg")
    expect(svg).to_have_attribute("role", "img")
    screenshot(page, "logs")


def test_a_bad_query_is_explained_next_to_the_search_field(
    page: Page, console_server: ConsoleServer
) -> None:
    signed_in(page, console_server)
    page.get_by_test_id("nav-logs").click()
    page.get_by_label("Search").fill("colour:red")
    page.get_by_test_id("logs-search-button").click()
    error = page.get_by_test_id("logs-search").get_by_test_id("field-error")
    expect(error).to_contain_text("unknown field 'colour'")
    expect(page.get_by_label("Search")).to_have_attribute("aria-invalid", "true")


def test_pages_of_fifty_events(page: Page, console_server: ConsoleServer) -> None:
    tenant = console_server.tenant_b
    for n in range(51):
        send(console_server, tenant, "+14155550142", f"{700000 + n}")
    total = len(wait_for_logs(console_server, tenant, "type:gd_send_sms", 51))
    signed_in(page, console_server, console_server.token(tenant))
    page.get_by_test_id("nav-logs").click()
    expect(page.get_by_test_id("logs-count")).to_have_text(f"Events 1 to 50 of {total}.")
    expect(page.get_by_test_id("logs-prev")).to_be_disabled()
    page.get_by_test_id("logs-next").click()
    expect(page.get_by_test_id("logs-count")).to_have_text(f"Events 51 to {total} of {total}.")
    expect(page.get_by_test_id("log-row")).to_have_count(total - 50)
    expect(page.get_by_test_id("logs-next")).to_be_disabled()
    page.get_by_test_id("logs-prev").click()
    expect(page.get_by_test_id("log-row")).to_have_count(50)
