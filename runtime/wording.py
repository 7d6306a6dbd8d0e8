"""pydantic's wording, said in the user's terms.

Validation messages are written for Python programmers (``Input should be a valid frozenset``,
``Value should have at least 8 items after validation, not 3``, ``(root): ...``). The people
who read our errors write TOML, JSON and environment variables. :data:`PHRASES` is the one
translation table; :func:`plain` applies it to any error line (the CLI passes every error it
prints through it) and :func:`problems` formats ``ValidationError.errors()`` with it.

This module imports only ``re``: the CLI's error path must not load pydantic to print a line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["PHRASES", "count", "plain", "problems"]

_LIST = "a list, in brackets: [...]"
_CONTAINERS = "List|Tuple|Set|Frozenset|Deque|Dictionary|Data"
"""pydantic's names of the values whose length is a number of entries."""

PHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        # containers: TOML and JSON have lists, not sets or tuples
        (r"Input should be a valid (?:frozenset|set|list|tuple|array)\b", f"should be {_LIST}"),
        (r"Input should be a valid dictionary(?: or instance of \w+)?", "should be a table"),
        # lengths: "List/Tuple/... should have at least 8 items after validation, not 3"
        (
            rf"\b(?:Value|{_CONTAINERS}) should have at least "
            r"1 item(?: after validation)?, not 0",
            "must not be empty",
        ),
        # "Value" is what pydantic's generic length check calls a secret (SecretStr: a token,
        # a key), its "items" being characters (it also names a Sequence[...] field so, which
        # no model here has: settings, tenants and providers use lists)
        (
            r"\bValue should have at least (\d+) items?(?: after validation)?, not (\d+)",
            r"needs at least \1 characters (it has \2)",
        ),
        (
            r"\bValue should have at most 1 item(?: after validation)?, not (\d+)",
            r"takes at most 1 character (it has \1)",
        ),
        (
            r"\bValue should have at most (\d+) items?(?: after validation)?, not (\d+)",
            r"takes at most \1 characters (it has \2)",
        ),
        (
            rf"\b(?:{_CONTAINERS}) should have at least "
            r"(\d+) items?(?: after validation)?, not (\d+)",
            r"needs at least \1 entries (it has \2)",
        ),
        (
            rf"\b(?:{_CONTAINERS}) should have at most "
            r"1 item(?: after validation)?, not (\d+)",
            r"takes at most 1 entry (it has \1)",
        ),
        (
            rf"\b(?:{_CONTAINERS}) should have at most "
            r"(\d+) items?(?: after validation)?, not (\d+)",
            r"takes at most \1 entries (it has \2)",
        ),
        (r"\bData should have at least (\d+) bytes?", r"needs at least \1 bytes"),
        (r"\bData should have at most (\d+) bytes?", r"takes at most \1 bytes"),
        (r"\bString should have at least 1 character\b", "must not be empty"),
        (r"\bString should have at least (\d+) characters?", r"needs at least \1 characters"),
        (r"\bString should have at most 1 character\b", "takes at most 1 character"),
        (r"\bString should have at most (\d+) characters?", r"takes at most \1 characters"),
        (r"\bString should match pattern '([^']*)'", r"does not have the allowed form (\1)"),
        # scalars
        (r"Input should be a valid string", "should be text in quotes"),
        (
            r"Input should be a valid integer(?:, (?:unable to parse string as an integer|"
            r"got a number with a fractional part))?",
            "should be a whole number",
        ),
        (
            r"Input should be a valid number(?:, unable to parse string as a number)?",
            "should be a number",
        ),
        (
            r"Input should be a valid boolean(?:, unable to interpret input)?",
            "should be true or false",
        ),
        (r"Input should be greater than or equal to ", "should be at least "),
        (r"Input should be less than or equal to ", "should be at most "),
        (r"Input should be greater than ", "should be more than "),
        (r"Input should be less than ", "should be less than "),
        (r"Input should be ", "should be "),
        # presence
        (r"\bField required\b", "missing (it is required)"),
        (r"\bExtra inputs are not permitted\b", "not a known setting (check the spelling)"),
        # a validator's own ValueError: its text is already ours
        (r"\b(?:Value|Assertion) error, ", ""),
        # the whole value, not one field: the caller's prefix already names it
        (r"\(root\): ", ""),
        (r": \(root\)$", ""),
    )
)
"""Library phrase → the user's terms, applied in order (specific phrases first)."""


def plain(text: str) -> str:
    """``text`` with each library phrase of :data:`PHRASES` in the user's terms."""
    for pattern, replacement in PHRASES:
        text = pattern.sub(replacement, text)
    return text


def problems(errors: Iterable[Mapping[str, Any]], *, prefix: str = "") -> str:
    """``ValidationError.errors()`` as one line: ``field.path: what is wrong; ...``.

    The location joins ``prefix`` and the error's ``loc``; an error about the whole value (an
    empty location) is said without one. Never shows the input: it may be a secret.
    """
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in (prefix, *err.get("loc", ())) if p != "")
        message = plain(str(err.get("msg", "invalid")))
        parts.append(f"{loc}: {message}" if loc else message)
    return "; ".join(parts) or "invalid input"


def count(number: int, noun: str) -> str:
    """``1 message``, ``0 messages``, ``2 messages``: ``noun`` (singular) made plural with an
    ``s`` unless ``number`` is 1."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
