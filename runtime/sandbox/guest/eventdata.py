"""Read-only plain data for tenant code: the event, HTTP responses and cache records.

Tenant handlers read ``event.message_options.code`` as well as ``event["message_options"]``,
as Auth0's JavaScript actions do. :class:`EventData` gives both over a private dict, refuses
every write, and holds only JSON values: nested objects are :class:`EventData` too and arrays
are tuples. It is built by a JSON round trip, so no caller's object (and no mutable alias of
one) ever reaches tenant code.

Names of methods win over fields: a field called ``get``, ``keys``, ``values`` or ``items``
is read with ``data["items"]``. Tenant attribute access goes through ``guards.guarded_getattr``,
which consults :data:`EVENT_METHODS` and :func:`field`; ``__getattr__`` here gives host code the
same view.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NoReturn

__all__ = [
    "EVENT_METHODS",
    "EventData",
    "dump_plain",
    "field",
    "freeze",
    "freeze_json",
    "plain_default",
    "to_plain",
]

EVENT_METHODS = frozenset({"get", "keys", "values", "items"})
"""The methods tenant code may call on :class:`EventData`."""


def _read_only(*_: object) -> NoReturn:
    raise TypeError("event data is read-only")


class EventData:
    """An immutable JSON object with attribute and item access.

    Nested objects and arrays are frozen on first read (dict → EventData, list → tuple) and
    memoised in the private dict: building costs one ``json.loads``, and no mutable value is
    ever handed out.
    """

    __slots__ = ("_data",)
    _data: dict[str, Any]

    def __init__(self, data: dict[str, Any]) -> None:
        """Wrap ``data``, a decoded JSON object this instance now owns (nobody else may hold it)."""
        object.__setattr__(self, "_data", data)

    @classmethod
    def from_event(cls, event: dict[str, Any] | str | bytes | EventData) -> EventData:
        """A frozen deep copy of ``event`` (a dict, or its JSON text); TypeError/ValueError if
        it is not a JSON object. An EventData is taken as it is (see :meth:`adopt`)."""
        if type(event) is EventData:
            return event
        if isinstance(event, str | bytes):
            text = event
        elif type(event) is dict:
            text = json.dumps(event, default=plain_default)
        else:
            raise TypeError(f"an event must be a dict or JSON text, not {type(event).__name__}")
        frozen = freeze_json(text)
        if type(frozen) is not EventData:
            raise TypeError("an event must be a JSON object")
        return frozen

    @classmethod
    def adopt(cls, data: object) -> EventData:
        """Wrap ``data``, a JSON object decoded just now that nobody else holds (the worker's
        invoke frame): no copy is needed, nested values freeze as they are read. TypeError if
        it is not a dict."""
        if type(data) is not dict:
            raise TypeError("an event must be a JSON object")
        return cls(data)

    def _get(self, key: str) -> Any:
        value = self._data[key]
        kind = type(value)
        if kind is dict:
            value = self._data[key] = EventData(value)
        elif kind is list:
            value = self._data[key] = _freeze_list(value)
        return value

    def _settled(self) -> dict[str, Any]:
        for key in self._data:
            self._get(key)
        return self._data

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key``, or ``default`` when it is absent (like ``dict.get``)."""
        return self._get(key) if key in self._data else default

    def keys(self) -> tuple[str, ...]:
        """The field names, in order."""
        return tuple(self._data)

    def values(self) -> tuple[Any, ...]:
        """The field values, in order."""
        return tuple(self._settled().values())

    def items(self) -> tuple[tuple[str, Any], ...]:
        """``(name, value)`` pairs, in order."""
        return tuple(self._settled().items())

    def __getattr__(self, name: str) -> Any:
        if name[:1] == "_" or name in EVENT_METHODS:
            raise AttributeError(name)
        return field(self, name)

    __getitem__ = _get

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if type(other) is EventData:
            return self._settled() == other._settled()
        return self._settled() == other

    __hash__ = None  # type: ignore[assignment]  # unhashable, like dict

    def __repr__(self) -> str:
        return repr(self._settled())

    __setattr__ = _read_only
    __delattr__ = _read_only
    __setitem__ = _read_only
    __delitem__ = _read_only


def field(data: EventData, name: str) -> Any:
    """``data.name`` for tenant code: the field, or an ``AttributeError`` naming what exists."""
    values = data._data
    if name in values:
        value = values[name]
        kind = type(value)
        return value if kind is not dict and kind is not list else data._get(name)
    known = ", ".join(sorted(data._data)[:30]) or "none"
    raise AttributeError(f"no field {name!r} here (fields: {known}); use .get() for optional ones")


def _freeze(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return EventData(value)
    if kind is list:
        return _freeze_list(value)
    return value


def _freeze_list(items: list[Any]) -> tuple[Any, ...]:
    return tuple(map(_freeze, items))


def freeze_json(text: str | bytes) -> Any:
    """Decode JSON ``text`` into frozen data: objects → EventData, arrays → tuples."""
    return _freeze(json.loads(text))


def freeze(value: Any) -> Any:
    """A frozen deep copy of JSON-compatible ``value`` (``TypeError``/``ValueError`` otherwise)."""
    return freeze_json(dump_plain(value))


def plain_default(value: object) -> Any:
    """``json.dumps`` hook: EventData serialises as its object; anything else is refused."""
    if type(value) is EventData:
        return value._data
    raise TypeError(f"a {type(value).__name__} is not JSON data")


def dump_plain(value: Any, *, allow_nan: bool = True) -> str:
    """Compact JSON for ``value``; ``TypeError`` names the first non-JSON type met."""
    return json.dumps(value, default=plain_default, allow_nan=allow_nan, separators=(",", ":"))


def to_plain(value: Any) -> Any:
    """A plain, mutable JSON copy (dict/list/str/int/float/bool/None) of ``value``."""
    return json.loads(dump_plain(value))
