"""Layer (b) at the language level: the attack classes must be refused, leaking nothing.

Each case is a complete tenant action run in-process (no worker) through the real compiler,
guards, facades and executor; the in-memory channel answers every ``api`` call.
"""

from __future__ import annotations

from typing import Any

import pytest

from runtime.sandbox.guest.executor import invoke_source
from runtime.sandbox.guest.guards import (
    SAFE_BUILTINS,
    OutputSink,
    guarded_getattr,
    guarded_getitem,
    guarded_inplacevar,
    guarded_iter,
    make_globals,
)
from runtime.sandbox.guest.module_facades import Facade
from runtime.sandbox.shared.contract import InvocationResult, SandboxLimits

LIMITS = SandboxLimits()
EVENT = {"message_options": {"code": "123456", "recipient": "+15555550123"}, "secrets": {"K": "v"}}
LEAK_MARKERS = ("site-packages", "/usr/lib", "runtime/sandbox", "<module", "posix", "built-in")


def fullwidth(text: str) -> str:
    """``text`` in fullwidth letters, which NFKC identifier normalisation folds back."""
    return "".join(chr(ord(ch) + 0xFEE0) for ch in text)


class Channel:
    def call(self, op: str, params: dict[str, Any]) -> Any:
        return {"status": 200, "headers": {}, "text": "", "json": None}


def run(body: str, *, prelude: str = "") -> InvocationResult:
    lines = "".join(f"    {line}\n" for line in body.splitlines())
    source = f"{prelude}def on_execute_send_phone_message(event, api):\n{lines}"
    return invoke_source(
        source, name="attack", trigger="send-phone-message", event=EVENT, channel=Channel(),
        limits=LIMITS,
    )  # fmt: skip


def assert_refused(result: InvocationResult, fragment: str) -> None:
    """Refused (at compile time or run time), with ``fragment`` in the report, nothing leaked."""
    assert result.outcome in ("compile_error", "runtime_error"), result
    assert result.result is None
    compile_messages = [issue.message for issue in result.compile_errors]
    text = " ".join([result.error or "", *result.traceback, *result.logs, *compile_messages])
    assert fragment in text, text
    assert not any(marker in text for marker in LEAK_MARKERS), text
    for line in result.traceback:  # tenant frames only, never a host file
        assert line.startswith(('File "<action:attack>"', "    ", "...")), line


MODULE_CHAINS = [
    ("import json\nreturn json.codecs.sys.modules['os'].getpid()", "json has no member 'codecs'"),
    ("import re\nreturn re.enum.bltns.open('/etc/hostname')", "re has no member 'enum'"),
    ("import base64\nreturn base64.re.enum.sys", "base64 has no member 're'"),
    ("import datetime\nreturn datetime.sys.modules", "datetime has no member 'sys'"),
    ("import urllib.parse\nreturn urllib.parse.sys", "urllib.parse has no member 'sys'"),
    ("import hashlib\nreturn hashlib.sha256.__globals__", "starts with"),
    ("import re\nreturn re.compile('a').groupindex", "access to Pattern.groupindex"),
    ("import datetime\nreturn datetime.datetime.mro()", "access to datetime.mro"),
]
IMPORTS = [
    ("from json import codecs", "cannot import name 'codecs'"),
    ("from json import decoder", "cannot import name 'decoder'"),  # not sys.modules['json.decoder']
    ("from urllib import request", "cannot import name 'request'"),
    ("from . import json", "relative imports"),
    ("from .json import dumps", "relative imports"),
    ("import json.decoder", "'json.decoder' is not available"),
    *[
        (f"import {name}", f"'{name}' is not available")
        for name in ("os", "sys", "importlib", "ctypes", "gc", "operator", "string", "pickle")
    ],
    ("import builtins", '"builtins" is a reserved name'),
    ("import itertools", "allowed: base64, datetime, hashlib, hmac, json, math, random, re"),
]
MISSING_BUILTINS = [
    f"return {call}"
    for call in (
        "getattr(api, 'http')", "setattr(api, 'x', 1)", "delattr(api, 'http')",
        "hasattr(api, 'http')", "type(1)", "object", "super()", "issubclass(int, int)", "id(1)",
        "hash(1)", "iter([1])", "next(x)", "open('/etc/hostname')", "globals()", "locals()",
        "vars()", "dir()", "compile('1', 'x', 'exec')", "breakpoint()", "help()", "input()",
        "format(1, 'x')", "memoryview(b'')", "bytearray(3)", "complex(1)", "BaseException",
        "SystemExit", "KeyboardInterrupt", "GeneratorExit", "exit()", "quit()",
    )
]  # fmt: skip
FORMAT_AND_CLASSES = [
    ("return '{0.__class__}'.format(1)", "access to str.format is not allowed"),
    ("return '{a}'.format_map({'a': 1})", "access to str.format_map is not allowed"),
    ("return str.format('{0}', 1)", "access to str.format is not allowed"),
    ("return ().__class__.__bases__[0].__subclasses__()", "starts with"),
    ("def f():\n    pass\nreturn f.__globals__", "starts with"),
    ("class S(str):\n    pass", "class definitions are not allowed"),
    (f"return {fullwidth('exec')}('1')", "Exec calls are not allowed"),  # NFKC folds to exec
    (f"_{fullwidth('getattr')}_ = 1", "starts with"),
]
FRAMES_AND_EXCEPTIONS = [
    ("g = (i for i in range(3))\nreturn g.gi_frame.f_back", "restricted name"),
    ("g = (i for i in range(3))\nreturn g.send", "access to generator.send"),
    ("try:\n    1/0\nexcept Exception as e:\n    return e.__traceback__", "starts with"),
    ("try:\n    1/0\nexcept Exception as e:\n    return e.__context__", "starts with"),
    ("try:\n    api.nope\nexcept AttributeError as e:\n    return e.obj", "AttributeError.obj"),
    ("try:\n    1/0\nexcept Exception as e:\n    return e.with_traceback", "with_traceback"),
]
WRITES = [
    ("json.dumps = None", "import json\n"),
    ("del json.dumps", "import json\n"),
    ("api.http = None", ""),
    ("api.log.info = len", ""),
    ("api.http.get.x = 1", ""),
    ("event.message_options = 1", ""),
    ("event['x'] = 1", ""),
    ("event.message_options['code'] = '000000'", ""),
    ("del event['secrets']", ""),
    ("x = event.message_options\nx.code = '1'", ""),
]
API_GRAPH = [
    ("return api.http.get.__self__", "starts with"),
    ("return api.http.get.__closure__", "starts with"),
    ("return api._members", "starts with"),
    ("return api.secrets", "api has no member 'secrets'"),
    ("return api.notification", "api has no member 'notification'"),
    ("for member in api:\n    pass", "not iterable"),
    ("return api['http']", "cannot be subscripted"),
    ("x = api\nx += 1", "+= is not allowed on Facade"),
    ("print('x', file=None)", "unexpected keyword argument 'file'"),
    ("import random\nrandom.seed(1)", "random has no member 'seed'"),
    ("import random\nreturn random.Random", "random has no member 'Random'"),
    ("import time\ntime.sleep(1)", "time has no member 'sleep'"),
    ("import math\nreturn math.factorial(10**6)", "math has no member 'factorial'"),
    ("raise SystemExit(0)", "NameError: name 'SystemExit' is not defined"),
]


@pytest.mark.parametrize(("body", "fragment"), MODULE_CHAINS + IMPORTS + FORMAT_AND_CLASSES)
def test_module_graph_and_reflection_are_refused(body: str, fragment: str) -> None:
    assert_refused(run(body), fragment)


@pytest.mark.parametrize("body", MISSING_BUILTINS)
def test_reflection_builtins_are_absent(body: str) -> None:
    result = run(body)
    assert_refused(result, "is not defined" if result.outcome == "runtime_error" else "")


@pytest.mark.parametrize(("body", "fragment"), FRAMES_AND_EXCEPTIONS + API_GRAPH)
def test_frames_exceptions_and_api_graph_are_refused(body: str, fragment: str) -> None:
    assert_refused(run(body), fragment)


@pytest.mark.parametrize(("body", "prelude"), WRITES)
def test_facades_and_event_are_read_only(body: str, prelude: str) -> None:
    assert_refused(run(body, prelude=prelude), "TypeError")


def test_a_refused_write_leaves_the_facade_working() -> None:
    assert run("json.dumps = len", prelude="import json\n").outcome == "runtime_error"
    assert run("return json.dumps([1])", prelude="import json\n").result == "[1]"


def test_event_tuples_are_immutable() -> None:
    event_with_list = {"xs": [1, 2]}
    source = "def on_execute_send_phone_message(event, api):\n    event.xs.append(3)\n"
    result = invoke_source(
        source, name="a", trigger="send-phone-message", event=event_with_list, channel=Channel(),
        limits=LIMITS,
    )  # fmt: skip
    assert result.outcome == "runtime_error"
    assert "tuple.append" in (result.error or "")
    assert event_with_list == {"xs": [1, 2]}


def test_random_state_is_per_invocation() -> None:
    body = "import random\nreturn [random.randint(0, 2**40) for _ in range(4)]"
    first, second = run(body).result, run(body).result
    assert first != second
    same = "import random as a\nimport random as b\nreturn a is b"
    assert run(same).result is True


def test_module_level_state_is_not_shared_between_invocations() -> None:
    prelude = "SEEN = []\n"
    body = "SEEN.append(1)\nreturn len(SEEN)"
    assert [run(body, prelude=prelude).result for _ in range(3)] == [1, 1, 1]


def test_allowed_reflection_free_basics_still_work() -> None:
    body = (
        "try:\n    1/0\nexcept ZeroDivisionError as e:\n    msg = e.args[0]\n"
        "return [msg, repr(api), isinstance(1, int), sorted({3, 1}), f'{2:03d}', '%s' % 'x']"
    )
    assert run(body).result == ["division by zero", "<facade api>", True, [1, 3], "002", "x"]


class LyingStr(str):
    def startswith(self, *args: Any) -> bool:  # the RP 7.2 bypass: a name that lies
        return False


def test_guarded_getattr_wants_an_exact_str_name() -> None:
    with pytest.raises(AttributeError):
        guarded_getattr("x", LyingStr("__class__"))
    with pytest.raises(AttributeError):
        guarded_getattr("x", LyingStr("upper"))


@pytest.mark.parametrize("name", ["gi_frame", "f_back", "tb_frame", "__class__", "_x", "format"])
def test_guarded_getattr_refuses_inspect_and_private_names(name: str) -> None:
    target: object = (i for i in range(0)) if name[:1] in "gf_" else ""
    with pytest.raises(AttributeError):
        guarded_getattr(target, name)


def test_guarded_getattr_never_defaults_to_none() -> None:
    with pytest.raises(AttributeError, match=r"access to int\.nope is not allowed"):
        guarded_getattr(1, "nope")
    with pytest.raises(AttributeError, match="not allowed"):
        guarded_getattr([], "__len__")


def test_subclasses_get_nothing() -> None:
    class MyDict(dict[str, int]):
        pass

    with pytest.raises(AttributeError):
        guarded_getattr(MyDict(), "get")
    with pytest.raises(TypeError):
        guarded_getitem(MyDict(a=1), "a")


def test_facade_never_answers_dunder_name_and_refuses_iteration() -> None:
    facade = Facade("demo", {"f": len})
    with pytest.raises(AttributeError):
        facade.__name__  # noqa: B018
    with pytest.raises(TypeError):
        guarded_iter(facade)
    with pytest.raises(TypeError):
        facade.f = 1


def test_inplacevar_only_for_plain_types() -> None:
    assert guarded_inplacevar("+=", 1, 2) == 3
    assert guarded_inplacevar("+=", [1], [2]) == [1, 2]
    with pytest.raises(TypeError):
        guarded_inplacevar("+=", Facade("x", {}), 1)


def test_builtins_follow_the_allow_list() -> None:
    left_out = "__build_class__ id hash iter next bytearray memoryview complex BaseException"
    left_out += " SystemExit KeyboardInterrupt GeneratorExit getattr setattr delattr hasattr vars"
    left_out += " dir globals locals type object super issubclass open input compile eval exec"
    left_out += " breakpoint help format __import__ MemoryError ImportError"
    assert not set(left_out.split()) & set(SAFE_BUILTINS)
    assert {"sorted", "zip", "tuple", "ApiError", "min", "max"} <= set(SAFE_BUILTINS)


def test_globals_are_fresh_dicts_per_invocation() -> None:
    first, second = make_globals(OutputSink(LIMITS)), make_globals(OutputSink(LIMITS))
    assert first is not second
    assert first["__builtins__"] is not second["__builtins__"]
    assert first["__builtins__"]["__import__"] is not second["__builtins__"]["__import__"]
    assert first["__name__"] == "tenant_action"
