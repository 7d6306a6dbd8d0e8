"""Auth0's log search syntax (``q`` of ``GET /api/v2/logs``), as a SQL condition.

The query is Lucene syntax, parsed with luqum (the maintained Lucene parser for Python), for
the fields this service stores in columns: ``type``, ``user_id``, ``user_name``,
``client_id``, ``ip``, ``log_id`` and ``date``. Terms are joined with ``AND``/``OR`` (a space
means AND, as Auth0), negated with ``NOT`` or ``-``, grouped with parentheses or
``field:(a OR b)``; a value may end with ``*`` (prefix); ``date`` takes a day or a range
``[from TO to]`` (``{}`` excludes an end, ``*`` leaves it open). A query the parser refuses, or
a field not listed, is one :class:`~runtime.errors.InvalidInputError` naming ``q``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from luqum import tree
from luqum.exceptions import ParseError
from luqum.parser import parser
from sqlalchemy import ColumnElement, and_, not_, or_, true

from runtime.errors import InvalidInputError
from runtime.store.schema import log_events

__all__ = ["FIELDS", "MAX_QUERY_CHARS", "condition"]

FIELDS = ("type", "user_id", "user_name", "client_id", "ip", "log_id", "date")
MAX_QUERY_CHARS = 1000  # a bound on what one search may ask the database to do
_MAX_TERMS = 50
_c = log_events.c


def condition(q: str | None) -> ColumnElement[bool]:
    """The WHERE condition for ``q`` (everything when it is empty)."""
    if q is None or not q.strip():
        return true()
    if len(q) > MAX_QUERY_CHARS:
        raise InvalidInputError(f"at most {MAX_QUERY_CHARS} characters", field="q")
    try:
        parsed = parser.parse(q)
    except (ParseError, ValueError) as exc:
        raise InvalidInputError(
            f"not a log query ({_parser_said(exc)}); write field:value terms joined by AND, OR "
            'and NOT, e.g. type:gd_send_sms AND user_name:"+14155552671"',
            field="q",
        ) from None
    counter = [0]
    return _node(parsed, None, counter)


def _parser_said(exc: Exception) -> str:
    """The parser's reason without its decoration ("Syntax error in input : ... !")."""
    text = str(exc).strip().removeprefix("Syntax error in input :").strip().rstrip("!")
    return text or "it could not be read"


def _node(node: Any, field: str | None, counter: list[int]) -> ColumnElement[bool]:
    counter[0] += 1
    if counter[0] > _MAX_TERMS * 3:
        raise InvalidInputError(f"at most {_MAX_TERMS} terms", field="q")
    if isinstance(node, tree.SearchField):
        if node.name not in FIELDS:
            raise InvalidInputError(
                f"unknown field {node.name!r} (searchable: {', '.join(FIELDS)})", field="q"
            )
        return _node(node.expr, node.name, counter)
    if isinstance(node, tree.AndOperation | tree.UnknownOperation):
        return and_(*(_node(child, field, counter) for child in node.children))
    if isinstance(node, tree.OrOperation):
        return or_(*(_node(child, field, counter) for child in node.children))
    if isinstance(node, tree.Not | tree.Prohibit):
        return not_(_node(node.a, field, counter))
    if isinstance(node, tree.Plus):
        if field == "user_name" and isinstance(node.a, tree.Word):  # +15555550123 unquoted
            return _value(field, "+" + _text(node.a))
        return _node(node.a, field, counter)
    if isinstance(node, tree.Group | tree.FieldGroup):
        return _node(node.expr, field, counter)
    if field is None:
        raise InvalidInputError(
            f"{str(node).strip()!r} names no field (write e.g. type:gd_send_sms)", field="q"
        )
    if isinstance(node, tree.Range):
        return _date_range(field, node)
    if isinstance(node, tree.Word | tree.Phrase):
        return _value(field, _text(node))
    raise InvalidInputError(f"{str(node).strip()!r} is not supported here", field="q")


def _text(node: tree.Word | tree.Phrase) -> str:
    value = str(node.value)
    if isinstance(node, tree.Phrase):
        value = value[1:-1].replace('\\"', '"')
    return value


def _value(field: str, value: str) -> ColumnElement[bool]:
    if field == "date":
        day = _moment(value, "date")
        return and_(_c.date >= day, _c.date < day + timedelta(days=1))
    column = getattr(_c, field)
    if value.endswith("*") and "*" not in value[:-1]:
        prefix = value[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(prefix + "%", escape="\\")  # type: ignore[no-any-return]
    if "*" in value or "?" in value:
        raise InvalidInputError(f"{field}: only a trailing * is supported", field="q")
    return column == value  # type: ignore[no-any-return]


def _date_range(field: str, node: tree.Range) -> ColumnElement[bool]:
    if field != "date":
        raise InvalidInputError(f"{field}: ranges are for date only", field="q")
    parts = []
    low, high = str(node.low), str(node.high)
    if low != "*":
        start = _moment(low, "date")
        parts.append(_c.date >= start if node.include_low else _c.date > start)
    if high != "*":
        end = _moment(high, "date")
        if len(high) == 10:  # a day: up to its end
            end += timedelta(days=1)
            parts.append(_c.date < end if node.include_high else _c.date < end - timedelta(days=1))
        else:
            parts.append(_c.date <= end if node.include_high else _c.date < end)
    return and_(true(), *parts)


def _moment(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip('"'))
    except ValueError:
        raise InvalidInputError(
            f"{field}: {value!r} is not a date (YYYY-MM-DD or ISO 8601)", field="q"
        ) from None
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
