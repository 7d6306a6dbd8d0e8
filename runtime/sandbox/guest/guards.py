"""Layer (b) of docs/sandbox.md: the guard hooks and builtins RestrictedPython code calls.

RestrictedPython only rewrites ``a.b``, ``a[k]``, ``for``, writes and ``print`` into calls to
hooks; what those hooks allow *is* the sandbox. As in Zope's AccessControl, the policy is a set
of tables keyed by exact type (subclasses get nothing), not scattered ``if``s: anything not
listed has no attributes at all (modules, functions, frames, code, generators, host objects).

The tables and builtins are immutable and built at import; :func:`make_globals` copies them
into a fresh dict per invocation.
"""

from __future__ import annotations

import binascii
import builtins
import datetime as dt
import hashlib
import hmac
import json
import operator
import re
import urllib.parse as up
from collections.abc import Callable, Mapping
from functools import partial
from types import MappingProxyType
from typing import Any

from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
)
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from runtime.sandbox.guest.eventdata import EVENT_METHODS, EventData, field
from runtime.sandbox.guest.module_facades import PATTERN_METHODS, Facade, FacadeImporter
from runtime.sandbox.shared.contract import SandboxLimits

__all__ = [
    "ATTR_RULES",
    "CLASS_RULES",
    "INLINE_CHECKS",
    "INPLACE_OPERATORS",
    "PLAIN_SUBSCRIPT_TYPES",
    "SAFE_BUILTINS",
    "ApiError",
    "OutputSink",
    "Printer",
    "guarded_apply",
    "guarded_getattr",
    "guarded_getitem",
    "guarded_inplacevar",
    "guarded_iter",
    "make_globals",
]


class ApiError(Exception):
    """An ``api`` call was refused or failed; the message is all a tenant learns."""


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STR = _names(
    "capitalize casefold center count encode endswith expandtabs find index isalnum isalpha "
    "isascii isdecimal isdigit isidentifier islower isnumeric isprintable isspace istitle "
    "isupper join ljust lower lstrip maketrans partition removeprefix removesuffix replace "
    "rfind rindex rjust rpartition rsplit rstrip split splitlines startswith strip swapcase "
    "title translate upper zfill"
)  # never format/format_map: they traverse attributes (CVE-2023-41039)
_BYTES = _names(
    "capitalize center count decode endswith expandtabs find fromhex hex index isalnum isalpha "
    "isascii isdigit islower isspace istitle isupper join ljust lower lstrip partition "
    "removeprefix removesuffix replace rfind rindex rjust rpartition rsplit rstrip split "
    "splitlines startswith strip swapcase title translate upper zfill"
)
_INT = _names("bit_count bit_length to_bytes from_bytes real imag numerator denominator conjugate")
_SET_READ = _names(
    "copy union intersection difference symmetric_difference issubset issuperset isdisjoint"
)
_HASH = _names("update digest hexdigest copy name digest_size block_size")
_SPLIT = _names(
    "scheme netloc path query fragment username password hostname port geturl count index"
)
_DATETIME = _names(
    "year month day hour minute second microsecond tzinfo fold date time timetz replace "
    "astimezone utcoffset dst tzname weekday isoweekday isocalendar isoformat strftime "
    "timestamp ctime toordinal"
)
_EXCEPTIONS: tuple[type[BaseException], ...] = (
    *(v for v in vars(builtins).values() if isinstance(v, type) and issubclass(v, BaseException)),
    ApiError,
    json.JSONDecodeError,
    re.error,
    binascii.Error,
)

ATTR_RULES: Mapping[type, frozenset[str]] = MappingProxyType(
    {
        **{exc: _names("args") for exc in _EXCEPTIONS},  # never .obj, __traceback__, __context__
        json.JSONDecodeError: _names("args msg doc pos lineno colno"),
        str: _STR,
        bytes: _BYTES,
        int: _INT,
        bool: _INT,
        float: _names("is_integer hex fromhex as_integer_ratio real imag conjugate"),
        list: _names("append extend insert pop remove index count sort reverse copy clear"),
        dict: _names("get keys values items pop popitem setdefault update copy clear"),
        tuple: _names("count index"),
        set: _SET_READ
        | _names(
            "add discard remove pop clear update intersection_update difference_update "
            "symmetric_difference_update"
        ),
        frozenset: _SET_READ,
        range: _names("start stop step count index"),
        slice: _names("start stop step"),
        dt.datetime: _DATETIME,
        dt.date: _names(
            "year month day replace weekday isoweekday isocalendar isoformat strftime ctime "
            "toordinal"
        ),
        dt.time: _names(
            "hour minute second microsecond tzinfo fold replace isoformat strftime utcoffset "
            "dst tzname"
        ),
        dt.timedelta: _names("days seconds microseconds total_seconds"),
        dt.timezone: _names("utcoffset tzname dst"),
        type(dt.date.today().isocalendar()): _names("year week weekday"),
        re.Match: _names(
            "group groups groupdict start end span string pos endpos lastindex lastgroup re expand"
        ),
        re.Pattern: _names("pattern flags groups"),  # methods: PATTERN_METHODS
        type(hashlib.sha256()): _HASH,
        hmac.HMAC: _HASH,
        up.SplitResult: _SPLIT,
        up.ParseResult: _SPLIT | {"params"},
    }
)
"""Attributes tenant code may read, by the object's exact type."""

ATTR_WRAPPERS: Mapping[type, Mapping[str, Callable[[Any], Any]]] = MappingProxyType(
    {re.Pattern: PATTERN_METHODS}
)
"""Attributes served through a checking wrapper: ``wrapper(obj)`` is what tenant code gets."""

_DATE_CLASS = _names(
    "today fromtimestamp fromisoformat fromordinal fromisocalendar min max resolution"
)
CLASS_RULES: Mapping[type, frozenset[str]] = MappingProxyType(
    {
        dt.datetime: _DATE_CLASS | _names("now utcnow utcfromtimestamp strptime combine"),
        dt.date: _DATE_CLASS,
        dt.time: _names("fromisoformat min max resolution"),
        dt.timedelta: _names("min max resolution"),
        dt.timezone: _names("utc min max"),
        str: _names("maketrans"),
        bytes: _names("fromhex maketrans"),
        dict: _names("fromkeys"),
        int: _names("from_bytes"),
        float: _names("fromhex"),
    }
)
"""Attributes of classes themselves (``datetime.datetime.now``), keyed by the class."""


_ATTR = dict(ATTR_RULES)  # plain dicts for the hot path: a mappingproxy lookup is slower
_CLASS = dict(CLASS_RULES)
_WRAPPERS = dict(ATTR_WRAPPERS)


def guarded_getattr(obj: object, name: str) -> Any:
    """``_getattr_``: ``obj.name`` only when the exact-type tables allow it, else AttributeError."""
    if type(name) is not str or name[:1] == "_" or name in INSPECT_ATTRIBUTES:
        raise AttributeError(f"access to {type(obj).__name__}.{name!s:.64} is not allowed")
    kind = type(obj)
    if kind is EventData:
        return getattr(obj, name) if name in EVENT_METHODS else field(obj, name)  # type: ignore[arg-type]
    if kind is Facade:
        members: Mapping[str, object] = obj._members  # type: ignore[attr-defined]
        if name in members:
            return members[name]
        known = ", ".join(sorted(members))
        raise AttributeError(f"{obj._name} has no member {name!r} (it has: {known})")  # type: ignore[attr-defined]
    allowed = _ATTR.get(kind)
    if allowed is not None and name in allowed:
        return getattr(obj, name)
    if kind is type:
        if name in _CLASS.get(obj, ()):  # type: ignore[call-overload]
            return getattr(obj, name)
        raise AttributeError(f"access to {obj.__name__}.{name} is not allowed")  # type: ignore[attr-defined]
    wrapper = _WRAPPERS.get(kind, {}).get(name)
    if wrapper is not None:
        return wrapper(obj)
    raise AttributeError(f"access to {kind.__name__}.{name} is not allowed")


PLAIN_SUBSCRIPT_TYPES = frozenset({dict, list, tuple, str, bytes, range, re.Match})
"""Types whose subscript is plain ``obj[key]``: compiled code checks these inline."""
_GETITEM_TYPES = PLAIN_SUBSCRIPT_TYPES | {EventData}


def guarded_getitem(obj: Any, key: Any) -> Any:
    """``_getitem_``: subscripts on plain containers and event data only."""
    kind = type(obj)
    if kind is EventData:
        return obj._get(key)
    if kind in _GETITEM_TYPES:
        return obj[key]
    raise TypeError(f"{type(obj).__name__} objects cannot be subscripted in actions")


def guarded_iter(obj: Any) -> Any:
    """``_getiter_``: ``iter`` after refusing facades (all other reachable data is plain)."""
    if type(obj) is Facade:
        raise TypeError(f"{obj!r} is not iterable")
    return iter(obj)


_INPLACE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
}
_INPLACE_TYPES = frozenset(
    {int, bool, float, str, bytes, list, tuple, set, frozenset, dict}
    | {dt.datetime, dt.date, dt.time, dt.timedelta}
)


INPLACE_OPERATORS = frozenset(_INPLACE_OPS)
"""The operators of ``x op= y`` that compiled code may run inline for :data:`_INPLACE_TYPES`."""

INLINE_CHECKS: Mapping[str, object] = MappingProxyType(
    {
        "_type_": type,
        "_inplace_types_": _INPLACE_TYPES,
        "_subscript_types_": PLAIN_SUBSCRIPT_TYPES,
    }
)
"""Hidden globals of the inline checks the compiler emits in place of the hottest guard calls
(``x op= y`` on a name, ``name[key]``): the same exact-type tables as :func:`guarded_inplacevar`
and :func:`guarded_getitem`, without a call per operation. Tenant code cannot name them (names
starting with ``_`` are refused)."""


def guarded_inplacevar(op: str, target: Any, value: Any) -> Any:
    """``_inplacevar_``: ``x op= y`` for plain data types only."""
    if type(target) in _INPLACE_TYPES:
        apply = _INPLACE_OPS.get(op)  # one lookup: this runs once per `+=` in a loop
        if apply is not None:
            return apply(target, value)
    raise TypeError(f"{op} is not allowed on {type(target).__name__}")


def guarded_apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``_apply_``: ``f(*a, **k)``; arguments are plain data, so nothing else to check."""
    return func(*args, **kwargs)


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary."""
    if len(text) <= limit and _utf8_len(text) <= limit:
        return text
    head = text[:limit].encode("utf-8", "surrogatepass")  # each character is >= 1 byte
    return head[:limit].decode("utf-8", "ignore")


class OutputSink:
    """Per-invocation log lines (``print`` and ``api.log``), capped in lines and bytes.

    Log lines beyond ``max_log_lines`` are counted and dropped. ``print`` output also counts
    against ``max_output_bytes`` in total; past that it is dropped and ``overflowed`` is set,
    which the executor reports as outcome ``output_limit``.
    """

    __slots__ = (
        "_line_bytes",
        "_max_lines",
        "_max_output",
        "_partial",
        "dropped",
        "lines",
        "overflowed",
        "printed_bytes",
    )

    def __init__(self, limits: SandboxLimits) -> None:
        self._max_lines = limits.max_log_lines
        self._line_bytes = limits.max_log_line_bytes
        self._max_output = limits.max_output_bytes
        self._partial = ""
        self.lines: list[str] = []
        self.dropped = 0
        self.printed_bytes = 0
        self.overflowed = False

    def log(self, line: str) -> None:
        """Record one log line, clipped to ``max_log_line_bytes``."""
        if len(self.lines) < self._max_lines:
            self.lines.append(_clip(line, self._line_bytes))
        else:
            self.dropped += 1

    def write(self, text: str) -> bool:
        """Take ``print`` output; False (and ``overflowed``) once the byte cap is passed."""
        if self.overflowed:
            return False
        size = _utf8_len(text)
        if self.printed_bytes + size > self._max_output:
            self.overflowed = True
            return False
        self.printed_bytes += size
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            self.log(line)
        return True

    def finish(self) -> list[str]:
        """The log lines, with a pending partial line and a "dropped" marker if any."""
        if self._partial:
            self.log(self._partial)
            self._partial = ""
        if self.dropped:
            return [*self.lines, f"... {self.dropped} log lines dropped"]
        return self.lines


class Printer:
    """``_print_`` for RestrictedPython: ``print(...)`` becomes ``_call_print``; no ``file=``."""

    __slots__ = ("_sink", "_text")

    def __init__(self, sink: OutputSink, _getattr_: object = None) -> None:
        self._sink = sink
        self._text: list[str] = []

    def _call_print(
        self, *objects: object, sep: str | None = " ", end: str | None = "\n", flush: bool = False
    ) -> None:
        """``print`` without ``file=`` (``out_03``); ``flush`` is accepted and means nothing."""
        if sep is not None and type(sep) is not str:
            raise TypeError("sep must be None or a string")
        if end is not None and type(end) is not str:
            raise TypeError("end must be None or a string")
        sep, end = " " if sep is None else sep, "\n" if end is None else end
        text = sep.join(map(str, objects)) + end
        if self._sink.write(text):
            self._text.append(text)

    def __call__(self) -> str:
        """The ``printed`` name: what this function printed so far."""
        return "".join(self._text)


_ALLOWED_BUILTINS = _names(
    "abs all any ascii bin bool callable chr dict divmod enumerate filter float frozenset hex "
    "int isinstance len list map max min oct ord pow range repr reversed round set slice "
    "sorted str sum tuple zip "
    "Exception ArithmeticError AssertionError AttributeError IndexError KeyError LookupError "
    "NameError NotImplementedError OverflowError RecursionError RuntimeError StopIteration "
    "TypeError UnicodeError ValueError ZeroDivisionError"
)
SAFE_BUILTINS: Mapping[str, object] = MappingProxyType(
    {
        **{name: getattr(builtins, name) for name in sorted(_ALLOWED_BUILTINS)},
        "None": None,
        "True": True,
        "False": False,
        "ApiError": ApiError,
    }
)
"""Builtins left out: no type/object/getattr/id/hash/iter/next/open/BaseException/SystemExit."""

_BUILTINS_TEMPLATE = dict(SAFE_BUILTINS)  # private dicts: dict.copy() is the fast copy
_GLOBALS_TEMPLATE: dict[str, object] = {
    "__name__": "tenant_action",
    "_getattr_": guarded_getattr,
    "_getitem_": guarded_getitem,
    "_getiter_": guarded_iter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,
    "_inplacevar_": guarded_inplacevar,
    "_apply_": guarded_apply,
    **INLINE_CHECKS,
}


def make_globals(sink: OutputSink) -> dict[str, Any]:
    """Fresh module globals for one invocation: guard hooks, builtins, importer and printer."""
    builtins_copy = _BUILTINS_TEMPLATE.copy()
    builtins_copy["__import__"] = FacadeImporter()
    namespace = _GLOBALS_TEMPLATE.copy()
    namespace["__builtins__"] = builtins_copy
    namespace["_print_"] = partial(Printer, sink)
    return namespace
