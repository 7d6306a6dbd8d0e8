"""The compiler's inline checks in place of ``_inplacevar_`` and ``_getitem_`` calls: the same
answers and the same refusals as the guards, with the guard called only for other types."""

from __future__ import annotations

import ast
import json
import random
import re
from typing import Any

import pytest
from RestrictedPython.transformer import RestrictingNodeTransformer

from runtime.sandbox.guest import compiler, guards
from runtime.sandbox.guest.compiler import TenantPolicy, clear_compile_cache
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


HIDDEN = sorted(guards.INLINE_CHECKS)
BINDINGS = [
    "{n} = [1]",
    "a, *{n} = [1, 2]",
    "({n} := 1)",
    "for {n} in []:\n    pass",
    "[1 for {n} in []]",
    "[({n} := i) for i in [1]]",
    "try:\n    pass\nexcept Exception as {n}:\n    pass",
    "with event as {n}:\n    pass",
    "import json as {n}",
    "from json import dumps as {n}",
    "del {n}",
    "{n} += 1",
    "def {n}():\n    pass",
    "def g({n}):\n    pass",
    "def g(*, {n}=None):\n    pass",
    "def g(*{n}):\n    pass",
    "def g(**{n}):\n    pass",
    "f = lambda {n}, /: 0",
    "f = lambda *, {n}: 0",
    "f = lambda x={n}: 0",
    "def g():\n    global {n}\n    {n} = 1",
    "return {n}",
]


@pytest.mark.parametrize("name", HIDDEN)
@pytest.mark.parametrize("spelling", BINDINGS)
def test_no_spelling_binds_or_reads_a_hidden_name(spelling: str, name: str) -> None:
    """Every binding form (and a plain read) of ``_type_``, ``_inplace_types_`` and
    ``_subscript_types_`` is refused when compiled, so the inline checks always see the
    guards' own tables (adv_20 covers positional-only parameters)."""
    result = run(spelling.format(n=name) + "\nreturn [1][0]")
    assert result.outcome == "compile_error", (result.outcome, result.result)
    assert f'"{name}" is an invalid variable name' in (result.error or ""), result.error


def test_the_checked_object_is_the_one_used() -> None:
    """A walrus in the key or the in-place value rebinds the name only after the subscripted
    (or in-place) object was loaded: the object the inline check saw is the one used, and an
    object the check refuses still meets the guard."""
    ok = run(
        "a = [10, 20]\nv = a[(a := api.log) and 1]\nn = 1\nn += (n := api.log) and 1\nreturn [v, n]"
    )
    assert ok.outcome == "ok", ok.error
    assert ok.result == [20, 2]
    refused = run("a = api.log\nreturn a[(a := [1, 2]) and 0]")
    assert refused.outcome == "runtime_error"
    assert "Facade objects cannot be subscripted in actions" in (refused.error or "")
    refused = run("m = api.log\nm += (m := 1)")
    assert refused.outcome == "runtime_error"
    assert "+= is not allowed on Facade" in (refused.error or "")


class _GuardsOnly(TenantPolicy):
    """The policy without the inline checks: RestrictedPython's guard calls alone."""

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        return RestrictingNodeTransformer.visit_AugAssign(self, node)

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        return RestrictingNodeTransformer.visit_Subscript(self, node)


_VALUES = (
    "[1, 2, 3]", "{'a': 1, 0: 2}", "(1, (2, 3))", "'abc'", "b'xy'", "range(5)", "{1, 2}",
    "frozenset({3})", "7", "1.5", "True", "None", "event['message_options']", "api.log", "len",
    "re.match('(a)(b)?', 'ab')", "datetime.timedelta(days=1)", "datetime.date(2020, 1, 2)",
    "slice(1, 2)", "(i for i in [1])",
)  # fmt: skip
_KEYS = ("0", "-1", "5", "'a'", "'code'", "1:", "::-1", "0, 1", "*v0", "None", "v1", "(v2 := v0)")
_OPS = ("+=", "-=", "*=", "//=", "%=", "|=", "&=", "^=", "@=")
_OPERANDS = ("1", "2", "'s'", "[9]", "(9,)", "{9}", "{'k': 1}", "v0", "v1", "v3[0]")


def _random_action(rng: random.Random) -> str:
    lines = ["import re", "import datetime", "def on_execute_send_phone_message(event, api):"]
    lines += ["    log = []"] + [f"    v{i} = {rng.choice(_VALUES)}" for i in range(4)]
    for _ in range(8):
        name = f"v{rng.randrange(4)}"
        if rng.random() < 0.5:
            step, shown = f"{name} {rng.choice(_OPS)} {rng.choice(_OPERANDS)}", name
        else:
            step, shown = f"r = {name}[{rng.choice(_KEYS)}]", "r"
        lines += ["    try:", f"        {step}", f"        log.append(repr({shown}))"]
        lines += ["    except Exception as e:", "        log.append(repr(e.args))"]
    return "\n".join([*lines, "    return log", ""])


def _outcome(source: str) -> dict[str, Any]:
    clear_compile_cache()
    result = invoke_source(
        source, name="diff", trigger="send-phone-message", event=EVENT, channel=None,  # type: ignore[arg-type]
        limits=LIMITS,
    )  # fmt: skip
    answer = result.model_dump(exclude={"duration_ms"})
    plain: dict[str, Any] = json.loads(re.sub(r"0x[0-9a-f]+", "0x", json.dumps(answer)))
    return plain


def test_inline_checks_answer_as_the_guard_calls_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeded differential check: random actions mixing every kind of value (plain, event
    data, facades, builtins, generators) with subscripts (keys, slices, starred keys, walrus
    keys) and in-place operators give the same outcome, result, error and traceback with
    the inline checks as with RestrictedPython's guard calls alone."""
    rng = random.Random(20261207)
    outcomes = set()
    for _ in range(150):
        source = _random_action(rng)
        inline = _outcome(source)
        monkeypatch.setattr(compiler, "TenantPolicy", _GuardsOnly)
        guarded = _outcome(source)
        monkeypatch.undo()
        assert inline == guarded, source
        outcomes.add(inline["outcome"])
    clear_compile_cache()
    assert outcomes == {"ok"}  # every step is in a try: the answers are the logs compared
