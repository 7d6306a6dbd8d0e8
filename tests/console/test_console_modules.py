"""The console's own modules run in the browser: the highlighter, the editor's compile-error
parsing, control characters made visible, fields named by API errors, and a page module that
fails to load leaving the others working."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, Route, expect

from tests.console.conftest import ConsoleServer, signed_in


def run_module(page: Page, server: ConsoleServer, call: str, arg: Any = None) -> Any:
    """The value of the expression ``call`` (``lib`` holds the modules, ``arg`` the argument)
    in the console's own origin, where its modules load. Written into the evaluated function
    itself: the console's CSP forbids eval and new Function."""
    page.goto(server.console_url)
    return page.evaluate(
        f"""async (arg) => {{
            const lib = {{
                highlight: await import("/console/static/lib/highlight.js"),
                dom: await import("/console/static/lib/dom.js"),
                api: await import("/console/static/lib/api.js"),
                actions: await import("/console/static/pages/actions.js"),
            }};
            return {call};
        }}""",
        arg,
    )


def test_the_highlighter_keeps_every_character_and_colours_python(
    page: Page, console_server: ConsoleServer
) -> None:
    source = (
        "@decorator\n"
        "def handler(event, api):  # a 'comment' with \"quotes\"\n"
        '    text = f"""multi\n'
        'line {event} # not a comment"""\n'
        "    return rb'\\x00' + 0x1F + 1_000.5e3 + classy\n"
        "unterminated = 'oops\n"
    )
    found = run_module(page, console_server, "lib.highlight.tokens(arg)", source)
    assert "".join(text for _, text in found) == source
    kinds = {text: kind for kind, text in found}
    assert kinds["@decorator"] == "tok-deco"
    assert kinds["def"] == "tok-kw"
    assert kinds["handler"] == "tok-fn"
    assert kinds["# a 'comment' with \"quotes\""] == "tok-com"
    assert kinds['f"""multi\nline {event} # not a comment"""'] == "tok-str"
    assert kinds["rb'\\x00'"] == "tok-str"
    assert kinds["0x1F"] == "tok-num"
    assert kinds["1_000.5e3"] == "tok-num"
    assert kinds["classy"] is None  # a name that starts like a keyword
    assert kinds["'oops"] == "tok-str"
    lines = run_module(page, console_server, "lib.highlight.lines(arg).length", source)
    assert lines == source.count("\n") + 1


def test_compile_messages_become_issues_on_lines(page: Page, console_server: ConsoleServer) -> None:
    message = (
        "Payload validation error: 'does not compile: line 4, column 11: SyntaxError: invalid "
        "syntax; it said; this; line 9: NameError: x (and 2 more)' on property code."
    )
    issues = run_module(page, console_server, "lib.actions.compileIssues(arg)", message)
    assert issues == [
        {"line": 4, "column": 11, "message": "SyntaxError: invalid syntax; it said; this"},
        {"line": 9, "column": None, "message": "NameError: x (and 2 more)"},
    ]


def test_control_characters_are_made_visible(page: Page, console_server: ConsoleServer) -> None:
    text = "a\x1bb\x07c\x00d\x7fe\x85f\u202eg\nh\ti"
    shown = run_module(
        page,
        console_server,
        "[lib.dom.visible(arg), lib.dom.visible(arg, false)]",
        text,
    )
    assert shown[0] == "a\u241bb\u2407c\u2400d\u2421e\\x85f\\u202eg\nh\ti"
    assert shown[1] == "a\u241bb\u2407c\u2400d\u2421e\\x85f\\u202eg\u240ah\u2409i"


def test_api_errors_name_their_field_and_scope(page: Page, console_server: ConsoleServer) -> None:
    messages = [
        "Payload validation error: 'Field required' on property name.",
        "Payload validation error: 'x' on property secrets[1].value; 'y' on property code.",
        "supported_triggers.0.id: must be one of send-phone-message",
        "Insufficient scope, expected any of: read:logs",
        "The tenant of this token does not exist.",
    ]
    found = run_module(
        page,
        console_server,
        "arg.map((m) => [lib.api.fieldOf(m), lib.api.scopeOf(m)])",
        messages,
    )
    assert found == [
        ["name", None],
        ["secrets[1].value", None],
        ["supported_triggers.0.id", None],
        [None, "read:logs"],
        [None, None],
    ]


def test_a_page_that_fails_to_load_leaves_the_others_working(
    page: Page, console_server: ConsoleServer
) -> None:
    def refuse(route: Route) -> None:
        route.fulfill(status=500, body="nope")

    page.route("**/console/static/pages/logs.js", refuse)
    signed_in(page, console_server)
    page.get_by_test_id("nav-logs").click()
    expect(page.get_by_test_id("page-load-error")).to_have_text(
        "This page failed to load. The other pages still work; reload to try again."
    )
    page.get_by_test_id("nav-actions").click()
    expect(page.get_by_role("heading", name="Actions", exact=True)).to_be_visible()
    page.unroute("**/console/static/pages/logs.js")
    page.get_by_test_id("nav-logs").click()  # retried at the next visit
    expect(page.get_by_test_id("page-load-error")).to_have_count(0)
    expect(page.get_by_role("heading", level=1)).to_have_text("Logs")


def test_no_module_parses_strings_as_html_or_code() -> None:
    """The console's rule, checked on its source: data becomes text nodes (``h()``), never
    markup or code. Comments may name the forbidden calls."""
    from runtime.api.web_console import STATIC_DIR

    forbidden = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new Function|"
        r"createContextualFragment|DOMParser|srcdoc|javascript:"
    )
    modules = sorted(STATIC_DIR.rglob("*.js"))
    assert len(modules) >= 8, modules
    for module in modules:
        for number, line in enumerate(module.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("//", 1)[0]
            assert not forbidden.search(code), f"{module.name}:{number}: {line.strip()}"
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in page  # inline script: the CSP would refuse it anyway
    assert not re.search(r"\son\w+\s*=", page, re.IGNORECASE)  # inline event handlers


def test_repainting_keeps_unchanged_lines_and_shows_the_new_text(
    page: Page, console_server: ConsoleServer
) -> None:
    first = "a = 1\nb = '''x\ny'''\nc = 3\n"
    second = "a = 1\ninserted = 2\nb = '''x\ny'''\nc = 3"
    found = run_module(
        page,
        console_server,
        """(() => {
            const pre = document.createElement("pre");
            lib.highlight.render(pre, arg[0], {});
            const kept = pre.children[0];
            lib.highlight.render(pre, arg[1], {4: "bad"});
            return {
                texts: [...pre.children].map((n) => n.textContent),
                numbers: [...pre.children].map((n) => n.dataset.line),
                marked: [...pre.querySelectorAll(".has-error")].map((n) => n.dataset.line),
                kept: pre.children[0] === kept,
                strings: [...pre.querySelectorAll(".tok-str")].map((n) => n.textContent),
            };
        })()""",
        [first, second],
    )
    assert found["texts"] == second.split("\n")
    assert found["numbers"] == ["1", "2", "3", "4", "5"]
    assert found["marked"] == ["4"]
    assert found["kept"] is True
    assert found["strings"] == ["'''x", "y'''"]
