"""Layer (a): source pre-checks, the TenantPolicy and the compile cache (docs/sandbox.md, a)."""

from __future__ import annotations

import pytest

from runtime.sandbox.guest.compiler import (
    CompiledAction,
    CompileFailed,
    check_action,
    clear_compile_cache,
    compile_action,
)
from runtime.sandbox.shared.contract import CompileIssue, SandboxLimits, Trigger

LIMITS = SandboxLimits()
SPM: Trigger = "send-phone-message"
OK = "def on_execute_send_phone_message(event, api):\n    return None\n"


def issues(source: str | bytes, trigger: Trigger = SPM, **limits: int) -> list[CompileIssue]:
    return check_action(source, name="t", trigger=trigger, limits=SandboxLimits(**limits))


def handler(body: str) -> str:
    lines = "".join(f"    {line}\n" for line in body.splitlines())
    return f"def on_execute_send_phone_message(event, api):\n{lines}"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_compile_cache()


def test_a_valid_action_compiles() -> None:
    compiled = compile_action(OK, name="demo", trigger=SPM, limits=LIMITS)
    assert isinstance(compiled, CompiledAction)
    assert compiled.handler == "on_execute_send_phone_message"
    assert compiled.filename == "<action:demo>"
    assert len(compiled.sha256) == 64
    assert compiled.source_lines[0].startswith("def on_execute")
    assert check_action(OK, name="demo", trigger=SPM, limits=LIMITS) == []


def test_custom_phone_provider_needs_its_own_handler() -> None:
    (issue,) = issues(OK, trigger="custom-phone-provider")
    assert "on_execute_custom_phone_provider" in issue.message
    assert "missing" in issue.message


def test_cache_returns_the_same_object_and_keys_on_name_and_version() -> None:
    first = compile_action(OK, name="a", trigger=SPM, limits=LIMITS)
    assert compile_action(OK.encode(), name="a", trigger=SPM, limits=LIMITS) is first
    other = compile_action(OK, name="b", trigger=SPM, limits=LIMITS)
    assert other is not first
    assert other.filename == "<action:b>"
    clear_compile_cache()
    assert compile_action(OK, name="a", trigger=SPM, limits=LIMITS) is not first


def test_compile_failed_carries_every_issue() -> None:
    with pytest.raises(CompileFailed) as caught:
        compile_action("x = (", name="t", trigger=SPM, limits=LIMITS)
    assert caught.value.issues
    assert "line 1" in str(caught.value)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_ten_megabyte_script_is_refused_by_size(as_bytes: bool) -> None:
    source = OK + "#" * (10 * 1024 * 1024)
    (issue,) = issues(source.encode() if as_bytes else source)
    assert f"{len(source)} bytes" in issue.message
    assert str(LIMITS.max_source_bytes) in issue.message


def test_size_counts_utf8_bytes() -> None:
    source = OK + "# " + "é" * 60
    assert issues(source, max_source_bytes=len(source) + 10)
    assert not issues(source, max_source_bytes=len(source.encode()))


def test_non_utf8_bytes_name_the_offset() -> None:
    (issue,) = issues(b"# hi\n" + b"\xff" + OK.encode())
    assert "offset 5" in issue.message
    assert "0xff" in issue.message
    assert (issue.line, issue.column) == (2, 0)


def test_lone_surrogate_is_refused() -> None:
    (issue,) = issues(OK + "# \udc80\n")
    assert "UTF-8" in issue.message


@pytest.mark.parametrize(
    "cookie", ["# -*- coding: latin-1 -*-", "# vim: set fileencoding=cp1252 :"]
)
def test_non_utf8_coding_cookie_is_refused(cookie: str) -> None:
    (issue,) = issues(f"{cookie}\n{OK}")
    assert issue.line == 1
    assert "not allowed" in issue.message


@pytest.mark.parametrize("prefix", ["# coding: utf-8\n", "#!/usr/bin/env python\n# coding=UTF_8\n"])
def test_utf8_cookie_and_bom_are_fine(prefix: str) -> None:
    assert issues(prefix + OK) == []
    assert issues(b"\xef\xbb\xbf" + OK.encode()) == []


def test_syntax_error_has_line_and_column() -> None:
    (issue,) = issues(handler("x = 1\ny = (1 +\n"))
    assert issue.message.startswith("SyntaxError")
    assert issue.line is not None
    assert issue.line >= 3


def test_syntax_error_column_is_zero_based() -> None:
    (issue,) = issues(handler("x = 1 +* 2"))
    assert (issue.line, issue.column) == (2, 11)


def test_null_byte_is_an_issue_not_an_exception() -> None:
    assert issues(OK + "x = 1\0\n")


def test_compiler_syntax_errors_are_reported() -> None:
    (issue,) = issues(handler("break"))
    assert issue.line == 2
    assert "'break' outside loop" in issue.message


@pytest.mark.parametrize(
    "expression",
    [
        "not " * 300 + "x",
        "-" * 300 + "1",
        "x" + ".a" * 300,
        "x" + "[0]" * 300,
    ],
)
def test_nesting_bomb_is_refused_cleanly(expression: str) -> None:
    (issue,) = issues(handler(f"return {expression}"))
    assert "nested" in issue.message
    assert issue.line == 2


def test_deep_nesting_never_escapes_as_recursion_error() -> None:
    """Past RP's ~246-level recursion limit, the compiler still answers with an issue."""
    source = handler("return " + "not " * 2000 + "x")
    found = issues(source, max_depth=100_000)
    assert found
    assert "nested too deeply" in found[0].message


def test_too_many_nodes() -> None:
    source = handler("\n".join(f"x{i} = {i}" for i in range(200)))
    (issue,) = issues(source, max_nodes=300)
    assert "300 syntax nodes" in issue.message
    assert issue.line is not None


def test_missing_handler() -> None:
    (issue,) = issues("def on_execute(event, api):\n    pass\n")
    assert "on_execute_send_phone_message" in issue.message
    assert issue.line is None


@pytest.mark.parametrize(
    "params", ["event", "event, api, extra", "event, *args", "event, api, *, k=1", "*a, **k"]
)
def test_handler_needs_exactly_two_positional_parameters(params: str) -> None:
    (issue,) = issues(f"def on_execute_send_phone_message({params}):\n    pass\n")
    assert "exactly two positional parameters" in issue.message
    assert issue.line == 1


def test_handler_must_not_be_rebound_or_duplicated() -> None:
    found = issues(OK + "on_execute_send_phone_message = 1\n" + OK)
    messages = " | ".join(i.message for i in found)
    assert "reassigned" in messages
    assert "more than once" in messages


def test_async_handler_is_refused() -> None:
    (issue,) = issues("async def on_execute_send_phone_message(event, api):\n    pass\n")
    assert "async def" in issue.message
    assert issue.line == 1


@pytest.mark.parametrize(
    "statement",
    ["print('hi')", "for i in range(3):\n    pass", "if True:\n    x = 1", "x += 1", "del x"],
)
def test_top_level_is_definitions_only(statement: str) -> None:
    found = issues(f"{OK}{statement}\n")
    assert any("top-level" in i.message and i.line == 3 for i in found)


def test_docstring_imports_and_assignments_are_allowed() -> None:
    source = f'"""My action."""\nimport json\nfrom re import sub\nPREFIX = "x"\n{OK}'
    assert issues(source) == []


def test_class_is_refused_with_position() -> None:
    found = issues(OK + "def helper():\n    class C:\n        pass\n")
    assert [(i.line, i.column) for i in found] == [(4, 4)]
    assert "class definitions are not allowed" in found[0].message


def test_all_restricted_python_issues_are_reported() -> None:
    source = handler("_hidden = 1\nx = event.__class__\nexec('1')\ny = (lambda: 1).gi_frame")
    found = issues(source)
    assert [i.line for i in found] == [2, 3, 4, 5]
    assert all(i.column is not None for i in found)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("x = ().__class__.__bases__[0].__subclasses__()", "starts with"),
        ("x = helper.__globals__", "starts with"),
        ("x = (i for i in []).gi_frame", "restricted name"),
        ("x = eval('1')", "Eval calls"),
        ("x = __builtins__", "starts with"),
        ("x = __import__('os')", "starts with"),
        ("from json import *", '"*" imports'),
        ("import _thread", "starts with"),
        ("def inner(_getattr_, /):\n    pass", "starts with"),
        ("(_write_ := 1)", "starts with"),
        ("try:\n    pass\nexcept Exception as _getattr_:\n    pass", "starts with"),
        ("def inner():\n    nonlocal x", "Nonlocal"),
        ("match event:\n    case _:\n        pass", "Match"),
        ("try:\n    pass\nexcept* ValueError:\n    pass", "TryStar"),
        ("print = 1", "reserved name"),
        ("x = 1\nx.y += 1", "Augmented assignment"),
    ],
)
def test_restricted_python_refusals(body: str, fragment: str) -> None:
    found = issues(handler(body))
    assert found, body
    assert any(fragment in i.message for i in found), found
    assert all(i.line is not None and i.line >= 2 for i in found)


def test_lambda_and_nested_functions_are_fine() -> None:
    assert (
        issues(handler("f = lambda x: x + 1\ndef g(a, b=2):\n    return a\nreturn f(g(1))")) == []
    )


def test_unknown_trigger_and_bad_name_are_caller_errors() -> None:
    with pytest.raises(ValueError, match="trigger"):
        compile_action(OK, name="t", trigger="nope", limits=LIMITS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        compile_action(OK, name="a\nb", trigger=SPM, limits=LIMITS)
