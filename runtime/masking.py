"""One mask for everything that leaves a sandbox worker, and one escape for tenant text.

A worker is untrusted: what it hands back (result, message id, error, logs, HTTP records) may
carry the tenant's secret values or the OTP code, on purpose or by accident, and may carry
control characters that clear an operator's screen or forge log lines. Every path that logs,
reports, records or prints such a value goes through :class:`Masker` (secrets and the code in
its spellings become :data:`MASK`) and :func:`escape_controls` (control characters become
visible escapes such as ``\\x1b``). :data:`MASK` is the project's only mask string.

The code is masked as digits (``730419``), as digits separated by up to three of
``. , ; : - _ /`` and white space (``7. 3. 0. 4. 1. 9``, ``73-04-19``), and with digits
spelled as English words (``seven three zero``), in any letter case, also next to letters
(``id730419``); not inside a longer run of digits, which would mask parts of phone numbers and
message ids (a code prefixed with a digit on purpose is an encoding, see below). Secrets (4
characters or more) are masked in any letter case (host names are lower-cased on the way) and in
their URL-encoded and JSON-escaped forms. A value deliberately encoded otherwise (base64, reversed)
cannot be recognised; the sandbox's egress rules are what keep secrets from leaving then.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "Masker",
    "MaskingLogFilter",
    "code_of_event",
    "escape_controls",
    "install_log_masking",
    "masking",
]

MASK = "******"
"""What a masked secret or code reads as, everywhere (logs, reports, recordings, CLI)."""

MIN_SECRET_LENGTH = 4
"""Shorter secret values are not masked: masking ``"GB"`` would mangle every text."""

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_SEPARATOR = r"[\s.,;:_/\-]{0,3}"

# C0 (tab and newline included: every field we show is one line), DEL, C1, and the Unicode
# bidi controls that reorder what a terminal shows (Trojan Source, CVE-2021-42574).
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_CONTROLS = [*map(chr, range(0x20)), *map(chr, range(0x7F, 0xA0)), *_BIDI]
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES = {
    ord(ch): _NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    for ch in _CONTROLS
}
_ESCAPES_KEEP_NEWLINE = {k: v for k, v in _ESCAPES.items() if k != ord("\n")}
_HAS_CONTROL = re.compile("[" + re.escape("".join(_CONTROLS)) + "]")


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with control characters shown as escapes (ESC as ``\\x1b``, LF as ``\\n``).

    ``keep_newlines`` keeps LF for multi-line texts (a traceback in an operator log); CR is
    still escaped, so no line can be overwritten.
    """
    if _HAS_CONTROL.search(text) is None:
        return text
    return text.translate(_ESCAPES_KEEP_NEWLINE if keep_newlines else _ESCAPES)


def _secret_forms(value: str) -> set[str]:
    forms = {value, quote(value), quote(value, safe=""), quote_plus(value, safe="")}
    forms.add(json.dumps(value)[1:-1])
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def _code_pattern(code: str) -> str:
    parts = []
    for ch in code:
        if "0" <= ch <= "9":
            parts.append(f"(?:{ch}|{_DIGIT_WORDS[int(ch)]})")
        else:
            parts.append(re.escape(ch))
    return _SEPARATOR.join(parts)


class Masker:
    """Masks one tenant's secret values and one code out of text and JSON-like data.

    Built once per invocation (one compiled pattern); :meth:`text` is a single regex pass, so
    its cost is linear in the text whatever it holds.
    """

    __slots__ = ("_pattern",)

    def __init__(self, secrets: Iterable[str] = (), code: str | None = None) -> None:
        forms: set[str] = set()
        for value in secrets:
            if type(value) is str and len(value) >= MIN_SECRET_LENGTH:
                forms |= _secret_forms(value)
        alternatives = [re.escape(form) for form in sorted(forms, key=lambda f: (-len(f), f))]
        if code and len(code) >= MIN_SECRET_LENGTH:
            alternatives.append(f"(?<![0-9]){_code_pattern(code)}(?![0-9])")
        self._pattern = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        """``value`` with every secret and spelling of the code replaced by :data:`MASK`."""
        if self._pattern is None or not value:
            return value
        return self._pattern.sub(MASK, value)

    def line(self, value: str) -> str:
        """:meth:`text`, then control characters escaped: a field shown on one line."""
        return escape_controls(self.text(value))

    def data(self, value: Any) -> Any:
        """JSON-like ``value`` with every string (dict keys too) passed through :meth:`text`."""
        if self._pattern is None:
            return value
        return self._data(value)

    def _data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                (self.text(k) if isinstance(k, str) else k): self._data(v) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._data(v) for v in value]
        return value


def code_of_event(event: dict[str, Any]) -> str | None:
    """The OTP code in an Auth0 trigger event (``message_options`` or ``notification``)."""
    for part in ("message_options", "notification"):
        section = event.get(part)
        if isinstance(section, dict):
            code = section.get("code")
            if isinstance(code, str) and code:
                return code
    return None


_CURRENT: ContextVar[Masker | None] = ContextVar("phone_actions_masker", default=None)


@contextmanager
def masking(masker: Masker) -> Iterator[Masker]:
    """Make ``masker`` the one :class:`MaskingLogFilter` applies in this task (and below)."""
    token = _CURRENT.set(masker)
    try:
        yield masker
    finally:
        _CURRENT.reset(token)


class MaskingLogFilter(logging.Filter):
    """Masks the current invocation's secrets and code out of a log record, and escapes
    control characters (tenant URLs and host names reach operator logs through it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        masker = _CURRENT.get()
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        if masker is not None:
            message = masker.text(message)
        record.msg, record.args = escape_controls(message), None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            if masker is not None:
                text = masker.text(text)
            record.exc_text = escape_controls(text, keep_newlines=True)
        return True


_FILTER = MaskingLogFilter()


def install_log_masking(prefix: str) -> None:
    """Attach the masking filter to every logger named ``prefix`` or ``prefix.*`` that exists
    now (a filter on a logger only sees that logger's own records, so call this again once
    lazily imported modules made theirs)."""
    manager = logging.Logger.manager
    names = [prefix, *(n for n in list(manager.loggerDict) if n.startswith(prefix + "."))]
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
