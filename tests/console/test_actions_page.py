"""The Actions page in a real browser: write, test, deploy, roll back and bind an action
through the console (which uses only the public API), and tenant output shown as text."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Dialog, Page, expect

from tests.console.conftest import ConsoleServer, signed_in

BROKEN = (
    "def on_execute_send_phone_message(event, api):\n"
    "    print('sending to ' + event['message_options']['recipient'])\n"
    "\n"
    "def helper(:\n"
    "    pass\n"
)


def fixed(base_url: str) -> str:
    """Code that compiles, logs, calls this service over HTTP and returns data."""
    return (
        "def on_execute_send_phone_message(event, api):\n"
        "    # the secret's value never shows: only its length\n"
        "    print('sending to ' + event['message_options']['recipient'])\n"
        f"    health = api.http.get('{base_url}/healthz')\n"
        "    return {'key_length': len(event['secrets']['API_KEY']), "
        "'health': health['status']}\n"
    )


HOSTILE = (
    "def on_execute_send_phone_message(event, api):\n"
    "    print('<img src=x onerror=\"window.pwned=1\"> \\x1b[31mred\\x07 <script>x()</script>')\n"
    "    return '<b>bold</b>\\x00\\u202e'\n"
)
SECRET = "s3cret-value-" + uuid.uuid4().hex[:6]

Shot = Callable[[Page, str], Path]


def action_name() -> str:
    return f"send-sms-{uuid.uuid4().hex[:8]}"


def create_in_console(page: Page, name: str) -> str:
    page.goto(page.url.split("#")[0] + "#/actions")
    page.get_by_test_id("new-action-name").fill(name)
    page.get_by_test_id("create-action").click()
    expect(page.get_by_test_id("action-name")).to_have_text(name)
    found = re.search(r"#/actions/([^/]+)$", page.url)
    assert found, page.url
    return found.group(1)


def test_write_fix_test_deploy_roll_back_and_bind(
    page: Page, console_server: ConsoleServer, screenshot: Shot
) -> None:
    signed_in(page, console_server)
    name = action_name()
    action_id = create_in_console(page, name)
    expect(page.get_by_test_id("action-status")).to_have_text("Not deployed")

    # a syntax error: refused, shown on its line (gutter and line) and in the list
    editor = page.get_by_test_id("code-editor")
    editor.fill(BROKEN)
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("gutter-error")).to_have_text(["4"])
    expect(page.get_by_test_id("error-line")).to_have_attribute("data-line", "4")
    expect(page.get_by_test_id("compile-error")).to_contain_text(["Line 4"])
    expect(editor).to_have_attribute("aria-invalid", "true")
    screenshot(page, "action-editor-error")
    stored = console_server.request("GET", f"/api/v2/actions/actions/{action_id}").json()
    assert "def helper(:" not in stored["code"]  # nothing was saved

    # a secret: its value is write-only
    page.get_by_test_id("secret-name").fill("API_KEY")
    page.get_by_test_id("secret-value").fill(SECRET)
    page.get_by_test_id("add-secret").click()
    expect(page.get_by_test_id("secret")).to_contain_text(["API_KEY"])
    expect(page.get_by_test_id("secret-value")).to_have_value("")

    # fixed: saved, the marks go
    editor.fill(fixed(console_server.base_url))
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Saved")
    expect(page.get_by_test_id("gutter-error")).to_have_count(0)
    expect(page.locator(".editor .tok-kw").first).to_have_text("def")

    # tested against the trigger's sample event: outcome, logs, duration
    expect(page.get_by_test_id("test-event")).to_have_value(re.compile(r'"message_options"'))
    page.get_by_test_id("run-test").click()
    expect(page.get_by_test_id("test-outcome")).to_have_text("ok")
    expect(page.get_by_test_id("test-logs")).to_have_text("sending to +14155552671")
    expect(page.get_by_test_id("test-duration")).to_have_text(re.compile(r"^\d+(\.\d+)? ms$"))
    expect(page.get_by_test_id("test-result")).to_contain_text(f'"key_length": {len(SECRET)}')
    calls = page.get_by_test_id("test-http").locator("tbody tr")
    expect(calls).to_have_count(1)
    expect(calls.locator("td")).to_have_text(
        ["GET", f"{console_server.base_url}/healthz", "200", re.compile(r"^\d+(\.\d+)? ms$")]
    )
    expect(page.get_by_test_id("test-result")).to_contain_text('"health": 200')
    screenshot(page, "action-test")

    # deployed twice, then rolled back to the first
    page.get_by_test_id("deploy").click()
    expect(page.get_by_test_id("action-status")).to_have_text("Deployed: version 1")
    editor.fill(fixed(console_server.base_url).replace("sending to ", "version two sends to "))
    page.get_by_test_id("deploy").click()  # saves first
    expect(page.get_by_test_id("action-status")).to_have_text("Deployed: version 2")
    expect(page.get_by_test_id("version-row")).to_have_count(2)
    page.get_by_test_id("rollback-1").click()
    expect(page.get_by_test_id("action-status")).to_have_text("Deployed: version 3")
    expect(page.get_by_test_id("notice")).to_contain_text("with the code of version 1")
    expect(editor).to_have_value(fixed(console_server.base_url))
    expect(page.get_by_test_id("version-row")).to_have_count(3)

    # bound to its trigger
    page.get_by_test_id("bind").click()
    expect(page.get_by_test_id("bindings")).to_contain_text(f"{name} (this action)")
    expect(page.get_by_test_id("unbind")).to_be_visible()
    screenshot(page, "action-versions")
    bindings = console_server.request(
        "GET", "/api/v2/actions/triggers/send-phone-message/bindings"
    ).json()["bindings"]
    assert [b["action"]["id"] for b in bindings] == [action_id]
    assert bindings[0]["action"]["deployed_version"]["number"] == 3

    # the list shows it deployed; the secret's value was never on any page
    page.get_by_test_id("nav-actions").click()
    expect(page.get_by_test_id("action-row").filter(has_text=name)).to_contain_text(
        "Deployed: version 3"
    )
    screenshot(page, "actions-list")
    assert SECRET not in page.content()


def test_output_with_html_and_control_characters_is_shown_as_text(
    page: Page, console_server: ConsoleServer
) -> None:
    name = "<b>bold</b>\x1b[31m " + action_name()  # the store keeps control characters
    created = console_server.request(
        "POST",
        "/api/v2/actions/actions",
        json={
            "name": name,
            "supported_triggers": [{"id": "send-phone-message", "version": "v2"}],
            "code": HOSTILE,
        },
    )
    assert created.status_code == 201, created.text
    signed_in(page, console_server)
    page.goto(f"{console_server.console_url}#/actions/{created.json()['id']}")
    shown = name.replace("\x1b", "\u241b")  # U+241B SYMBOL FOR ESCAPE
    expect(page.get_by_test_id("action-name")).to_have_text(shown)
    page.get_by_test_id("run-test").click()
    expect(page.get_by_test_id("test-outcome")).to_have_text("ok")
    # the sandbox escapes control characters in logs itself; the HTML stays text
    expect(page.get_by_test_id("test-logs")).to_have_text(
        '<img src=x onerror="window.pwned=1"> \\x1b[31mred\\x07 <script>x()</script>'
    )
    # a result is data: JSON escapes C0 characters, the console the invisible ones it keeps
    expect(page.get_by_test_id("test-result")).to_have_text('"<b>bold</b>\\u0000\\u202e"')
    main = page.locator("main")
    expect(main.locator("img")).to_have_count(0)
    expect(main.locator("b")).to_have_count(0)
    expect(main.locator("script")).to_have_count(0)
    assert page.evaluate("window.pwned") is None
    page.get_by_test_id("nav-actions").click()
    expect(page.get_by_test_id("action-row").filter(has_text=shown[12:])).to_contain_text(shown)
    expect(main.locator("b")).to_have_count(0)


def test_the_editor_keyboard_tab_indents_escape_then_tab_leaves(
    page: Page, console_server: ConsoleServer
) -> None:
    signed_in(page, console_server)
    create_in_console(page, action_name())
    editor = page.get_by_test_id("code-editor")
    editor.fill("x = 1")
    editor.press("End")
    editor.press("Tab")
    expect(editor).to_have_value("x = 1    ")
    editor.fill("        x = 1")
    editor.press("Shift+Tab")  # one level less
    expect(editor).to_have_value("    x = 1")
    editor.fill("if x:")
    editor.press("End")
    editor.press("Enter")
    expect(editor).to_have_value("if x:\n    ")
    editor.press("Escape")
    editor.press("Tab")
    expect(page.get_by_test_id("save")).to_be_focused()
    expect(editor).to_have_value("if x:\n    ")


def test_a_token_without_create_actions_sees_the_403_explained(
    page: Page, console_server: ConsoleServer
) -> None:
    signed_in(page, console_server, console_server.token(None, "read:actions"))
    page.get_by_test_id("new-action-name").fill(action_name())
    page.get_by_test_id("create-action").click()
    expect(page.get_by_test_id("create-form").get_by_role("alert")).to_contain_text(
        "This token lacks the scope create:actions"
    )


def test_delete_asks_first_and_refuses_a_bound_action(
    page: Page, console_server: ConsoleServer
) -> None:
    name = action_name()
    created = console_server.request(
        "POST",
        "/api/v2/actions/actions",
        json={
            "name": name,
            "supported_triggers": [{"id": "custom-phone-provider", "version": "v1"}],
            "deploy": True,
        },
    )
    assert created.status_code == 201, created.text
    action_id = created.json()["id"]
    bound = console_server.request(
        "PATCH",
        "/api/v2/actions/triggers/custom-phone-provider/bindings",
        json={"bindings": [{"ref": {"type": "action_id", "value": action_id}}]},
    )
    assert bound.status_code == 200, bound.text
    signed_in(page, console_server)
    page.goto(f"{console_server.console_url}#/actions/{action_id}")
    page.get_by_test_id("delete").click()
    page.get_by_role("button", name="Cancel").click()  # nothing happens
    expect(page.get_by_test_id("confirm-delete")).to_have_count(0)
    page.get_by_test_id("delete").click()
    page.get_by_test_id("confirm-delete").click()
    expect(page.get_by_test_id("page-error")).to_have_text(
        "This action is bound to its trigger: unbind it first (Trigger binding)."
    )
    page.get_by_test_id("unbind").click()
    expect(page.get_by_test_id("bind")).to_be_visible()
    page.get_by_test_id("confirm-delete").click()
    expect(page.get_by_role("heading", name="Actions", exact=True)).to_be_visible()
    expect(page.get_by_test_id("action-row").filter(has_text=name)).to_have_count(0)
    gone = console_server.request("GET", f"/api/v2/actions/actions/{action_id}")
    assert gone.status_code == 404


def test_closing_the_tab_with_unsaved_code_asks_first(
    page: Page, console_server: ConsoleServer
) -> None:
    signed_in(page, console_server)
    create_in_console(page, action_name())
    editor = page.get_by_test_id("code-editor")
    editor.press("End")
    editor.type("\n# unsaved")
    asked: list[str] = []

    def stay(dialog: Dialog) -> None:
        asked.append(dialog.type)
        dialog.dismiss()  # stay on the page

    page.on("dialog", stay)
    page.close(run_before_unload=True)
    expect(editor).to_have_value(re.compile("# unsaved$"))
    assert asked == ["beforeunload"]
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Saved")
    with page.expect_event("close"):  # nothing unsaved: it closes without a question
        page.close(run_before_unload=True)
    assert asked == ["beforeunload"]
