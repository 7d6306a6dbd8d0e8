"""The compiler's inline checks in place of ``_inplacevar_`` and ``_getitem_`` calls: the same
answers and the same refusals as the guards, with the guard called only for other types."""

from __future__ import annotations

import ast
from typing import Any

import pytest

from runtime.sandbox.guest import guards
from runtime.sandbox.guest.compiler import TenantPolicy
from runtime.sandbox.guest.eventdata import EventData
from runtime.sandbox.guest.executor import invoke_source
from runtime.sandbox.shared.contract import SandboxLimits
from tests.support.events import load_event

LIMITS = SandboxLimits()
EVENT = load_event("spm_sms_verify_us")


def transformed(source: str) -> str:
    tree = ast.parse(source)
    policy = TenantPolicy([], [], {})
    policy.visit(tree)
    assert policy.errors == []
    return ast.unparse(tree)


def run(body: str) -> Any:
    lines = "".join(f"    {line}\n" for line in body.splitlines())
    source = f"def on_execute_send_phone_message(event, api):\n{lines}"
    result = invoke_source(
        source, name="inline", trigger="send-phone-message", event=EVENT, channel=None,  # type: ignore[arg-type]
        limits=LIMITS,
    )  # fmt: skip
    return result


def test_only_names_with_allowed_operators_get_the_inline_check() -> None:
    code = transformed("x += 1\ns @= 2\nd[i]\nf()[0]\nd[0][1]\n")
    assert (
        "if _type_(x) in _inplace_types_:\n    x += 1\nelse:\n    x = _inplacevar_('+=', x, 1)"
        in code
    )
    assert "s = _inplacevar_('@=', s, 2)" in code  # not an operator the guard allows
    assert "d[i] if _type_(d) in _subscript_types_ else _getitem_(d, i)" in code
    assert "_getitem_(f(), 0)" in code  # an expression would be evaluated twice: guarded
    assert "_getitem_(d[0] if _type_(d) in _subscript_types_ else _getitem_(d, 0), 1)" in code


def test_the_hidden_globals_are_the_guards_own_tables() -> None:
    namespace = guards.make_globals(guards.OutputSink(LIMITS))
    assert namespace["_type_"] is type
    assert namespace["_inplace_types_"] is guards._INPLACE_TYPES
    assert namespace["_subscript_types_"] | {EventData} == guards._GETITEM_TYPES
    assert {op for op in guards._INPLACE_OPS} == guards.INPLACE_OPERATORS


def test_inline_paths_answer_as_the_guards() -> None:
    result = run(
        "a = [1]\nalias = a\na += [2]\n"  # in place: the alias sees it, as with operator.iadd
        "n = 7\nn //= 2\nn **= 2\ns = 'ab'\ns *= 2\nt = (1,)\nt += (2,)\n"
        "d = {'k': [5, 6]}\nm = {'a': 1}\nm |= {'b': 2}\n"
        "return [alias, n, s, t, d['k'][1], s[1:3], 'xyz'[-1], m]"
    )
    assert result.outcome == "ok", result.error
    assert result.result == [[1, 2], 9, "abab", [1, 2], 6, "ba", "z", {"a": 1, "b": 2}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("o = event['message_options']\no += 1", "+= is not allowed on EventData"),
        ("m = api.log\nm -= 1", "-= is not allowed on Facade"),
        ("f = len\nreturn f[0]", "builtin_function_or_method objects cannot be subscripted"),
        ("x = None\nx += 1", "+= is not allowed on NoneType"),
    ],
)
def test_other_types_still_meet_the_guard(body: str, message: str) -> None:
    result = run(body)
    assert result.outcome == "runtime_error"
    assert message in (result.error or "")


def test_event_data_subscripts_still_go_through_event_data() -> None:
    result = run("o = event['message_options']\nreturn [o['code'], o['recipient'][0]]")
    assert result.outcome == "ok", result.error
    assert result.result == ["481516", "+"]


def test_errors_keep_the_tenants_line_numbers() -> None:
    result = run("x = [1]\nreturn x[5]")
    assert result.outcome == "runtime_error"
    assert any("line 3" in frame for frame in result.traceback), result.traceback


@pytest.mark.parametrize("depth", [10, 40, 80])
def test_nested_keys_grow_the_tree_linearly(depth: int) -> None:
    """A key holding another inlined subscript is not copied again: ``a[a[a[...]]]`` would
    otherwise double at every level when it is compiled."""
    key = "0"
    for _ in range(depth):
        key = f"a[{key}]"
    tree = ast.parse(f"x = {key}\nx += {key}\n")
    before = sum(1 for _ in ast.walk(tree))
    TenantPolicy([], [], {}).visit(tree)
    after = sum(1 for _ in ast.walk(tree))
    assert after <= before + 200


def test_large_in_place_values_stay_with_the_guard() -> None:
    code = transformed("x += " + " + ".join(f"v{i}" for i in range(40)) + "\n")
    assert code.startswith("x = _inplacevar_('+=', x, ")
