"""Layer (b) of docs/sandbox.md: importable names are facades of vetted functions, never modules.

Real modules expose their own imports (``json.codecs.sys``, ``re.enum.bltns``, ``base64.re``,
``datetime.sys``, ``urllib.parse.sys``), and ``from m import x`` does a C-level getattr that
``_getattr_`` never sees. A :class:`Facade` holds only the members listed here, so both paths
end at vetted functions. The functions check argument types and sizes and raise only
``TypeError``/``ValueError`` (or subclasses such as ``JSONDecodeError``), with plain messages.

Everything here is immutable and built at import, so a zygote can import this module before
forking; the one per-invocation facade is ``random`` (its state must not be shared).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import math
import random
import re
import time
import urllib.parse as up
from collections.abc import Callable, Mapping
from functools import partial
from types import MappingProxyType
from typing import Any, NoReturn, TypeVar

from runtime.sandbox.guest.eventdata import EventData, plain_default

__all__ = [
    "ALLOWED_MODULES",
    "MAX_INPUT",
    "MAX_PATTERN",
    "PATTERN_METHODS",
    "STATIC_FACADES",
    "Facade",
    "FacadeImporter",
    "make_random",
]

MAX_INPUT = 1024 * 1024
"""Largest string/bytes a facade function accepts (json, re subjects, base64, urllib.parse)."""
MAX_PATTERN = 1000
MAX_SAMPLE = 100_000
_T = TypeVar("_T")
_MISSING: Any = object()


class Facade:
    """A read-only namespace of vetted members standing in for a module (or the ``api`` object).

    ``__getattr__`` serves members only, so the C-level getattr of ``from m import x`` gets
    members too; it never answers ``__name__``, which stops IMPORT_FROM's fallback to
    ``sys.modules["m.x"]``.
    """

    __slots__ = ("_members", "_name")
    _name: str
    _members: Mapping[str, object]

    def __init__(self, name: str, members: Mapping[str, object]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_members", MappingProxyType(dict(members)))

    def __getattr__(self, name: str) -> object:
        member = self._members.get(name, _MISSING) if name[:1] != "_" else _MISSING
        if member is _MISSING:
            raise AttributeError(f"{self._name} has no member {name!r}")
        return member

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise TypeError(f"{self._name} is read-only")

    def __delattr__(self, name: str) -> NoReturn:
        raise TypeError(f"{self._name} is read-only")

    def __repr__(self) -> str:
        return f"<facade {self._name}>"


Check = Callable[[object, str], None]
"""Validates one argument (``value``, ``name``): raises TypeError/ValueError, returns nothing."""


def _kind(*kinds: type, limit: int | None = None) -> Check:
    """A check: ``type(value)`` is exactly one of ``kinds``; str/bytes at most ``limit`` long."""
    names = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)

    def check(value: object, what: str) -> None:
        if type(value) not in kinds:
            raise TypeError(f"{what} must be {names}, not {type(value).__name__}")
        if limit is not None and type(value) in (str, bytes) and len(value) > limit:  # type: ignore[arg-type]
            raise ValueError(f"{what} is {len(value)} long, over the limit of {limit}")  # type: ignore[arg-type]

    return check


TEXT = _kind(str, bytes, limit=MAX_INPUT)
STR = _kind(str, limit=MAX_INPUT)
BYTES = _kind(bytes, limit=MAX_INPUT)
SHORT = _kind(str, bytes, limit=256)
INT = _kind(int)
BOOL = _kind(bool)
_PATTERN_TEXT = _kind(str, bytes, limit=MAX_PATTERN)
_QUERY = _kind(dict, EventData, list, tuple)


def _pattern(value: object, what: str) -> None:
    if type(value) is not re.Pattern:
        _PATTERN_TEXT(value, what)


def _repl(value: object, what: str) -> None:
    if type(value) in (str, bytes):
        TEXT(value, what)
    elif not callable(value):
        raise TypeError(f"{what} must be str, bytes or a function, not {type(value).__name__}")


_SEQUENCE = _kind(tuple, list, up.SplitResult, up.ParseResult)


def _parts(count: int) -> Check:
    def check(value: object, what: str) -> None:
        _SEQUENCE(value, what)
        if len(value) != count or any(type(p) is not str for p in value):  # type: ignore[arg-type, attr-defined]
            raise TypeError(f"{what} must be {count} strings")

    return check


def checked(real: Callable[..., _T], name: str, *params: tuple[str, Check]) -> Callable[..., _T]:
    """``real`` behind exact-type checks of its ``params``; nothing else may be passed.

    Arguments reach ``real`` by keyword, so a tenant cannot shift one into a parameter that is
    not listed (``base64.b64decode(s, altchars)``); defaults stay ``real``'s own.
    """
    order = tuple(param for param, _ in params)
    checks = dict(params)

    def call(*args: Any, **kwargs: Any) -> _T:
        if len(args) > len(order):
            raise TypeError(f"{name}() takes at most {len(order)} arguments")
        for param, value in zip(order, args, strict=False):
            if param in kwargs:
                raise TypeError(f"{name}() got {param!r} twice")
            kwargs[param] = value
        for param, value in kwargs.items():
            check = checks.get(param)
            if check is None:
                raise TypeError(f"{name}() takes no argument {param!r}")
            check(value, f"{name}() argument {param!r}")
        return real(**kwargs)

    call.__name__ = call.__qualname__ = name.rpartition(".")[2]
    return call


def _shallow(call: Callable[[], _T], what: str) -> _T:
    """Run ``call``; a RecursionError (deeply nested data) becomes a fresh ValueError."""
    try:
        return call()
    except RecursionError:
        pass
    raise ValueError(f"{what}: data is nested too deeply")


def _json_dumps(
    obj: Any,
    *,
    indent: int | str | None = None,
    sort_keys: bool = False,
    separators: tuple[str, str] | list[str] | None = None,
    ensure_ascii: bool = True,
) -> str:
    _kind(int, str, type(None), limit=16)(indent, "indent")
    if type(indent) is int and not 0 <= indent <= 16:
        raise ValueError("indent must be between 0 and 16")
    BOOL(sort_keys, "sort_keys")
    BOOL(ensure_ascii, "ensure_ascii")
    seps: tuple[str, str] | None = None
    if separators is not None:
        _kind(tuple, list)(separators, "separators")
        if len(separators) != 2 or any(type(s) is not str or len(s) > 16 for s in separators):
            raise TypeError("separators must be two short strings")
        seps = (separators[0], separators[1])
    text = _shallow(
        lambda: json.dumps(
            obj,
            indent=indent,
            sort_keys=sort_keys,
            separators=seps,
            ensure_ascii=ensure_ascii,
            default=plain_default,
        ),
        "json.dumps",
    )
    if len(text) > MAX_INPUT:
        raise ValueError(f"json.dumps output is over the limit of {MAX_INPUT} characters")
    return text


def _json_loads(s: str | bytes) -> Any:
    TEXT(s, "json.loads() input")
    return _shallow(lambda: json.loads(s), "json.loads")


def _pattern_method(method: str, *params: tuple[str, Check]) -> Callable[[Any], Any]:
    def accessor(pattern: re.Pattern[Any]) -> Callable[..., Any]:
        return checked(getattr(pattern, method), f"Pattern.{method}", *params)

    return accessor


_SUBJECT = (("string", TEXT), ("pos", INT), ("endpos", INT))
_SUB = (("repl", _repl), ("string", TEXT), ("count", INT))
PATTERN_METHODS: Mapping[str, Callable[[Any], Any]] = MappingProxyType(
    {
        **{m: _pattern_method(m, *_SUBJECT) for m in ("search", "match", "fullmatch", "findall")},
        "finditer": _pattern_method("finditer", *_SUBJECT),
        "split": _pattern_method("split", ("string", TEXT), ("maxsplit", INT)),
        "sub": _pattern_method("sub", *_SUB),
        "subn": _pattern_method("subn", *_SUB),
    }
)
"""``re.Pattern`` methods for ``guards.guarded_getattr``: ``accessor(pattern)`` → checked method."""

_DIGESTS = ("md5", "sha1", "sha256", "sha512")


def _hash(name: str) -> Callable[..., Any]:
    real: Callable[[bytes], Any] = getattr(hashlib, name)
    return checked(lambda data=b"": real(data), f"hashlib.{name}", ("data", _kind(bytes)))


_HASHES = {name: _hash(name) for name in _DIGESTS}
"""The hashlib facade's constructors; ``hmac.new(key, msg, hashlib.sha256)`` may name them."""


def _as_digest_name(value: object) -> object:
    """A hashlib facade constructor as its name (``hashlib.sha256`` → ``"sha256"``)."""
    return next((name for name, made in _HASHES.items() if value is made), value)


def _digest_name(value: object, what: str) -> None:
    value = _as_digest_name(value)
    if type(value) is not str or value not in _DIGESTS:
        raise ValueError(f"{what} must be one of {', '.join(_DIGESTS)} or hashlib.<name>")


def _hmac_new(key: bytes, msg: bytes | None = None, digestmod: object = "sha256") -> Any:
    return hmac.new(key, msg, str(_as_digest_name(digestmod)))


def _hmac_digest(key: bytes, msg: bytes, digest: object = "sha256") -> bytes:
    return hmac.digest(key, msg, str(_as_digest_name(digest)))


def _compare_digest(a: str | bytes, b: str | bytes) -> bool:
    TEXT(a, "compare_digest() argument")
    _kind(type(a))(b, "compare_digest() argument")
    return hmac.compare_digest(a, b)  # type: ignore[arg-type]  # str is fine when ASCII


def make_random() -> Facade:
    """A ``random`` facade over a fresh ``random.Random()``: no seed is shared between runs."""
    rng = random.Random()
    population = _kind(list, tuple, str, range)

    def size(value: object, what: str) -> None:
        INT(value, what)
        if not 0 <= value <= MAX_SAMPLE:  # type: ignore[operator]
            raise ValueError(f"{what} must be between 0 and {MAX_SAMPLE}")

    weights = _kind(list, tuple, type(None))
    members: dict[str, object] = {
        "random": rng.random,
        "randint": rng.randint,
        "randrange": rng.randrange,
        "uniform": rng.uniform,
        "choice": rng.choice,
        "choices": checked(
            rng.choices,
            "random.choices",
            ("population", population),
            ("weights", weights),
            ("cum_weights", weights),
            ("k", size),
        ),
        "sample": checked(rng.sample, "random.sample", ("population", population), ("k", size)),
        "shuffle": checked(rng.shuffle, "random.shuffle", ("x", _kind(list))),
    }
    return Facade("random", members)


# the table ----------------------------------------------------------------------------------

_MATH_NAMES = (
    "ceil floor fabs sqrt exp log log10 log2 sin cos tan asin acos atan atan2 hypot degrees "
    "radians isfinite isnan isinf isclose trunc copysign fmod pi e tau inf nan"
)
_DATETIME = "datetime date time timedelta timezone UTC MINYEAR MAXYEAR"  # classes: CLASS_RULES
_FLAGS = ("I", "IGNORECASE", "M", "MULTILINE", "S", "DOTALL", "X", "VERBOSE", "A", "ASCII")
_FLAG_BITS = 0
for _flag in _FLAGS:
    _FLAG_BITS |= int(getattr(re, _flag))


def _re_flags(value: object, what: str) -> None:
    """Only the flags the facade offers: ``re.DEBUG`` prints the compiled pattern on the
    worker's stdout, past the captured ``print``; ``re.LOCALE`` and ``re.TEMPLATE`` are
    refused by ``re`` for str patterns or deprecated anyway."""
    INT(value, what)
    if value & ~_FLAG_BITS:  # type: ignore[operator]
        raise ValueError(f"{what}: only re.I, re.M, re.S, re.X and re.A may be combined")


_RE = (("pattern", _pattern), ("string", TEXT))
_URL = (("url", STR), ("scheme", STR), ("allow_fragments", BOOL))
_QS = (("qs", STR), ("keep_blank_values", BOOL))

_PARSE = Facade(
    "urllib.parse",
    {
        "quote": checked(up.quote, "quote", ("string", TEXT), ("safe", SHORT)),
        "quote_plus": checked(up.quote_plus, "quote_plus", ("string", TEXT), ("safe", SHORT)),
        "unquote": checked(up.unquote, "unquote", ("string", STR)),
        "unquote_plus": checked(up.unquote_plus, "unquote_plus", ("string", STR)),
        "urlencode": checked(
            up.urlencode, "urlencode", ("query", _QUERY), ("doseq", BOOL), ("safe", SHORT)
        ),
        "urlsplit": checked(up.urlsplit, "urlsplit", *_URL),
        "urlunsplit": checked(up.urlunsplit, "urlunsplit", ("components", _parts(5))),
        "urlparse": checked(up.urlparse, "urlparse", *_URL),
        "urlunparse": checked(up.urlunparse, "urlunparse", ("components", _parts(6))),
        "parse_qs": checked(partial(up.parse_qs, max_num_fields=1000), "parse_qs", *_QS),
        "parse_qsl": checked(partial(up.parse_qsl, max_num_fields=1000), "parse_qsl", *_QS),
    },
)

STATIC_FACADES: Mapping[str, Facade] = MappingProxyType(
    {
        "json": Facade(
            "json",
            {"dumps": _json_dumps, "loads": _json_loads, "JSONDecodeError": json.JSONDecodeError},
        ),
        "re": Facade(
            "re",
            {
                **{
                    name: checked(getattr(re, name), f"re.{name}", *_RE, ("flags", _re_flags))
                    for name in ("search", "match", "fullmatch", "findall", "finditer")
                },
                "split": checked(
                    re.split, "re.split", *_RE, ("maxsplit", INT), ("flags", _re_flags)
                ),
                **{
                    name: checked(
                        getattr(re, name), f"re.{name}", _RE[0], *_SUB, ("flags", _re_flags)
                    )
                    for name in ("sub", "subn")
                },
                "compile": checked(
                    re.compile, "re.compile", ("pattern", _pattern), ("flags", _re_flags)
                ),
                "escape": checked(re.escape, "re.escape", ("pattern", TEXT)),
                "error": re.error,
                **{flag: int(getattr(re, flag)) for flag in _FLAGS},
            },
        ),
        "math": Facade("math", {name: getattr(math, name) for name in _MATH_NAMES.split()}),
        "datetime": Facade("datetime", {name: getattr(dt, name) for name in _DATETIME.split()}),
        "hashlib": Facade("hashlib", dict(_HASHES)),
        "hmac": Facade(
            "hmac",
            {
                "new": checked(
                    _hmac_new,
                    "hmac.new",
                    ("key", _kind(bytes)),
                    ("msg", _kind(bytes, type(None))),
                    ("digestmod", _digest_name),
                ),
                "digest": checked(
                    _hmac_digest,
                    "hmac.digest",
                    ("key", _kind(bytes)),
                    ("msg", _kind(bytes)),
                    ("digest", _digest_name),
                ),
                "compare_digest": _compare_digest,
            },
        ),
        "base64": Facade(
            "base64",
            {
                **{
                    name: checked(getattr(base64, name), f"base64.{name}", ("s", BYTES))
                    for name in ("b64encode", "urlsafe_b64encode", "b16encode")
                },
                "b64decode": checked(
                    base64.b64decode, "base64.b64decode", ("s", TEXT), ("validate", BOOL)
                ),
                "urlsafe_b64decode": checked(
                    base64.urlsafe_b64decode, "base64.urlsafe_b64decode", ("s", TEXT)
                ),
                "b16decode": checked(
                    base64.b16decode, "base64.b16decode", ("s", TEXT), ("casefold", BOOL)
                ),
            },
        ),
        "urllib": Facade("urllib", {"parse": _PARSE}),
        "urllib.parse": _PARSE,
        "time": Facade("time", {"time": time.time, "monotonic": time.monotonic}),
    }
)
"""Facades shared by every invocation: immutable, holding only stateless functions."""

ALLOWED_MODULES = (*sorted(n for n in STATIC_FACADES if n != "urllib"), "random")


class FacadeImporter:
    """``__import__`` for tenant code: facades by name; ``random`` is made on first import."""

    __slots__ = ("_random",)

    def __init__(self) -> None:
        self._random: Facade | None = None

    def __call__(
        self,
        name: str,
        globals: object = None,  # the signature of __import__
        locals: object = None,
        fromlist: object = (),
        level: int = 0,
    ) -> Facade:
        if level != 0:
            raise ImportError("relative imports are not allowed in actions")
        facade = STATIC_FACADES.get(name) if type(name) is str else None
        if name == "random":
            if self._random is None:
                self._random = make_random()
            facade = self._random
        if facade is None:
            allowed = ", ".join(sorted(ALLOWED_MODULES))
            raise ImportError(f"module {name!r} is not available to actions; allowed: {allowed}")
        if not fromlist and "." in name:  # ``import urllib.parse`` binds ``urllib``
            return STATIC_FACADES[name.partition(".")[0]]
        return facade


def _warm() -> None:
    """Load what the facades import lazily, so forked workers neither pay for nor open it."""
    dt.datetime.strptime("2024-01-02 03:04:05", "%Y-%m-%d %H:%M:%S")  # imports _strptime
    dt.datetime.now(dt.UTC).astimezone()
    for codec in ("latin-1", "ascii", "utf-16", "cp1252", "idna"):  # encodings.* load lazily
        "x".encode(codec).decode(codec)
    up.urlsplit("https://bücher.example/a?b=c#d").port  # noqa: B018  # imports unicodedata


_warm()
