"""The importable facades (docs/sandbox.md, b): what works, the caps, and the types they return."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from runtime.sandbox.guest.eventdata import EventData
from runtime.sandbox.guest.executor import invoke_source
from runtime.sandbox.guest.guards import guarded_getattr
from runtime.sandbox.guest.module_facades import (
    MAX_INPUT,
    MAX_PATTERN,
    PATTERN_METHODS,
    STATIC_FACADES,
    Facade,
    FacadeImporter,
)
from runtime.sandbox.shared.contract import SandboxLimits


class Channel:
    def call(self, op: str, params: dict[str, Any]) -> Any:
        return None


def run(body: str) -> Any:
    """The handler's result; fails the test unless the outcome is ``ok``."""
    lines = "".join(f"    {line}\n" for line in body.splitlines())
    source = f"def on_execute_send_phone_message(event, api):\n{lines}"
    result = invoke_source(
        source, name="f", trigger="send-phone-message", event={}, channel=Channel(),
        limits=SandboxLimits(),
    )  # fmt: skip
    assert result.outcome == "ok", result
    return result.result


def member(module: str, name: str) -> Any:
    return guarded_getattr(STATIC_FACADES[module], name)


def test_import_forms_of_urllib_parse() -> None:
    assert run("import urllib.parse\nreturn urllib.parse.quote('a b')") == "a%20b"
    assert run("from urllib.parse import quote\nreturn quote('a b')") == "a%20b"
    assert run("from urllib import parse\nreturn parse.quote_plus('a b')") == "a+b"
    assert run("import urllib.parse as up\nreturn up.unquote('a%20b')") == "a b"


def test_importer_rules() -> None:
    importer = FacadeImporter()
    assert importer("json") is STATIC_FACADES["json"]
    assert importer("urllib.parse", None, None, None, 0) is STATIC_FACADES["urllib"]
    assert importer("urllib.parse", None, None, ("quote",), 0) is STATIC_FACADES["urllib.parse"]
    assert importer("random") is importer("random")
    assert FacadeImporter()("random") is not importer("random")
    with pytest.raises(ImportError, match="relative"):
        importer("json", None, None, (), 1)
    with pytest.raises(ImportError, match="allowed: base64"):
        importer("socket")


def test_json_round_trip_and_event_data() -> None:
    body = (
        "import json\n"
        "data = json.loads('{\"a\": [1, 2.5, null]}')\n"
        "return [data, json.dumps(data, sort_keys=True, separators=(',', ':')), "
        "json.dumps(event, indent=2)]"
    )
    assert run(body) == [{"a": [1, 2.5, None]}, '{"a":[1,2.5,null]}', "{}"]


def test_json_decode_error_is_catchable() -> None:
    body = (
        "import json\ntry:\n    json.loads('{')\n"
        "except json.JSONDecodeError as e:\n    return [e.msg, e.pos]"
    )
    assert run(body) == ["Expecting property name enclosed in double quotes", 1]


def test_json_caps_and_refusals() -> None:
    dumps, loads = member("json", "dumps"), member("json", "loads")
    with pytest.raises(ValueError, match="limit"):
        loads(" " * (MAX_INPUT + 1))
    with pytest.raises(ValueError, match="limit"):
        dumps("x" * MAX_INPUT)
    with pytest.raises(TypeError, match="set is not JSON"):
        dumps({1, 2})
    with pytest.raises(TypeError):
        dumps([], cls=json.JSONEncoder)
    with pytest.raises(TypeError):
        dumps([], default=repr)
    with pytest.raises(ValueError, match="nested too deeply"):
        loads("[" * 100_000 + "]" * 100_000)
    with pytest.raises(TypeError):
        loads(1)


def test_re_functions_and_flags() -> None:
    body = (
        "import re\n"
        "m = re.search(r'(\\d+)-(?P<tail>\\w+)', 'ab 12-cd', re.I | re.M)\n"
        "p = re.compile('[aeiou]')\n"
        "return [m.group(1), m.groupdict(), m.span(), p.sub('_', 'banana'), p.findall('hello'),"
        " re.split(',', 'a,b'), re.sub('a', lambda m: m.group(0).upper(), 'aXa'),"
        " p.pattern, re.escape('a.b'), m.re.pattern[:3]]"
    )
    assert run(body) == [
        "12",
        {"tail": "cd"},
        [3, 8],
        "b_n_n_",
        ["e", "o"],
        ["a", "b"],
        "AXA",
        "[aeiou]",
        "a\\.b",
        "(\\d",
    ]


@pytest.mark.parametrize("flags", ["128", "re.I | 128", "4", "1 << 40", "-1"])
def test_re_takes_only_the_flags_it_offers(flags: str) -> None:
    """re.DEBUG (128) would print the compiled pattern on the worker's own stdout."""
    source = (
        "def on_execute_send_phone_message(event, api):\n"
        f"    import re\n    re.compile('a', {flags})\n"
    )
    result = invoke_source(
        source, name="f", trigger="send-phone-message", event={}, channel=Channel(),
        limits=SandboxLimits(),
    )  # fmt: skip
    assert result.outcome == "runtime_error"
    assert "only re.I, re.M, re.S, re.X and re.A may be combined" in (result.error or "")


def test_re_caps() -> None:
    search = member("re", "search")
    with pytest.raises(ValueError, match="pattern"):
        search("a" * (MAX_PATTERN + 1), "a")
    with pytest.raises(ValueError, match="string"):
        search("a", "a" * (MAX_INPUT + 1))
    with pytest.raises(TypeError):
        search("a", 1)
    with pytest.raises(TypeError, match="no argument 'pos'"):
        search("a", "a", pos=1)


def test_pattern_methods_are_checked_too() -> None:
    pattern = re.compile("a")
    search = guarded_getattr(pattern, "search")
    assert search("xa", 1).span() == (1, 2)
    with pytest.raises(ValueError, match="string"):
        search("a" * (MAX_INPUT + 1))
    with pytest.raises(TypeError):
        search("a", pos="1")
    assert set(PATTERN_METHODS) >= {"search", "sub", "split", "finditer"}
    with pytest.raises(AttributeError):
        guarded_getattr(pattern, "scanner")


def test_math_datetime_hashing_and_time() -> None:
    body = (
        "import math, datetime, hashlib, hmac, base64, time\n"
        "d = datetime.datetime.fromisoformat('2024-01-02T03:04:05+00:00')\n"
        "later = d + datetime.timedelta(hours=1)\n"
        "mac = hmac.new(b'key', b'msg', 'sha256').hexdigest()\n"
        "return [math.floor(2.7), round(math.sqrt(16)), later.isoformat(), d.year,"
        " later.strftime('%H:%M'), d.tzinfo == datetime.UTC, hashlib.sha256(b'x').hexdigest()[:8],"
        " mac == hmac.new(b'key', b'msg').hexdigest(), hmac.compare_digest('a', 'a'),"
        " base64.b64encode(b'hi').decode(), base64.b64decode('aGk=').decode(),"
        " time.time() > 0, datetime.datetime.now(datetime.timezone.utc).year > 2000]"
    )
    result = run(body)
    assert result[:5] == [2, 4, "2024-01-02T04:04:05+00:00", 2024, "04:04"]
    assert result[5:] == [True, "2d711642", True, True, "aGk=", "hi", True, True]


def test_hashing_and_base64_argument_checks() -> None:
    with pytest.raises(TypeError):
        member("hashlib", "sha256")("text")
    with pytest.raises(ValueError, match="sha256"):
        member("hmac", "new")(b"k", b"m", "md4")
    with pytest.raises(ValueError, match="sha256"):
        member("hmac", "new")(b"k", b"m", len)
    with pytest.raises(TypeError, match="at most 2"):
        member("base64", "b64decode")(b"YQ==", None, True)  # no altchars slot to shift into
    with pytest.raises(ValueError, match="limit"):
        member("base64", "b64encode")(b"x" * (MAX_INPUT + 1))
    with pytest.raises(TypeError):
        member("hmac", "compare_digest")("a", b"a")


def test_urllib_parse_results_and_checks() -> None:
    body = (
        "from urllib.parse import urlsplit, urlencode, parse_qs, urlunsplit\n"
        "u = urlsplit('https://user@example.com:8443/p?q=1#f')\n"
        "return [u.scheme, u.hostname, u.port, u.path, u.geturl(), urlencode({'a': 1, 'b': 'x y'}),"
        " parse_qs('a=1&a=2'), urlunsplit(('https', 'h', '/', '', '')), urlencode(event)]"
    )
    assert run(body) == [
        "https",
        "example.com",
        8443,
        "/p",
        "https://user@example.com:8443/p?q=1#f",
        "a=1&b=x+y",
        {"a": ["1", "2"]},
        "https://h/",
        "",
    ]
    with pytest.raises(TypeError, match="5 strings"):
        member("urllib.parse", "urlunsplit")(("a", "b"))
    with pytest.raises(TypeError):
        member("urllib.parse", "quote")("x", encoding="latin-1")


def test_random_facade_members_and_caps() -> None:
    body = (
        "import random\nxs = [1, 2, 3]\nrandom.shuffle(xs)\n"
        "return [sorted(xs), 0 <= random.random() < 1, random.choice('ab') in 'ab',"
        " len(random.choices([1, 2], k=5)), len(random.sample(range(10), 3))]"
    )
    assert run(body) == [[1, 2, 3], True, True, 5, 3]
    rnd = FacadeImporter()("random")
    with pytest.raises(ValueError, match="between 0"):
        guarded_getattr(rnd, "choices")([1], k=10**9)
    with pytest.raises(TypeError):
        guarded_getattr(rnd, "shuffle")((1, 2))


def test_facade_members_are_read_only_plain_objects() -> None:
    facade = STATIC_FACADES["json"]
    assert isinstance(facade, Facade)
    assert repr(facade) == "<facade json>"
    with pytest.raises(TypeError):
        object.__getattribute__(facade, "_members")["dumps"] = None
    with pytest.raises(AttributeError):
        facade.codecs  # noqa: B018


def test_class_attribute_allowlists() -> None:
    datetime_class = member("datetime", "datetime")
    assert guarded_getattr(datetime_class, "fromisoformat")("2024-01-01").year == 2024
    for name in ("mro", "now_ns", "fromtimestamp_ns", "__subclasses__"):
        with pytest.raises(AttributeError):
            guarded_getattr(datetime_class, name)
    assert guarded_getattr(str, "maketrans")("a", "b") == {97: 98}
    with pytest.raises(AttributeError):
        guarded_getattr(str, "format")


def test_event_data_passes_through_facades() -> None:
    data = EventData({"to": "+1", "n": [1, {"x": 2}]})
    assert member("json", "dumps")(data, sort_keys=True) == '{"n": [1, {"x": 2}], "to": "+1"}'
    flat = EventData({"to": "+1", "n": 2})
    assert member("urllib.parse", "urlencode")(flat) == "to=%2B1&n=2"


def test_hmac_accepts_a_hashlib_constructor_as_digestmod() -> None:
    import hashlib as real_hashlib
    import hmac as real_hmac

    result = run(
        "import hmac, hashlib\n"
        "by_function = hmac.new(b'key', b'msg', hashlib.sha256).hexdigest()\n"
        "by_name = hmac.new(b'key', b'msg', 'sha256').hexdigest()\n"
        "return [by_function == by_name, hmac.digest(b'key', b'msg', hashlib.sha1).hex()]"
    )
    assert result == [True, real_hmac.digest(b"key", b"msg", real_hashlib.sha1).hex()]
