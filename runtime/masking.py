"""Masking secrets and the code out of operator logs, over :mod:`runtime.sandbox.shared.masker`
(one mask for everything that leaves a sandbox worker, and one escape for tenant text; its names
are this module's too).

While an invocation runs, :func:`masking` makes its :class:`Masker` the current one, and
:class:`MaskingLogFilter` applies it to the sandbox's operator log records.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from runtime.sandbox.shared.masker import (
    CHECK_BUDGET,
    MASK,
    MAX_MATCHES,
    MIN_SECRET_LENGTH,
    MIN_SECRET_LINE,
    TRIE_FORM,
    Masker,
    code_of_event,
    escape_controls,
)

__all__ = [
    "CHECK_BUDGET",
    "MASK",
    "MAX_MATCHES",
    "MIN_SECRET_LENGTH",
    "MIN_SECRET_LINE",
    "TRIE_FORM",
    "Masker",
    "MaskingLogFilter",
    "RuntimeText",
    "code_of_event",
    "escape_controls",
    "install_log_masking",
    "masking",
]


_CURRENT: ContextVar[Masker | None] = ContextVar("phone_actions_masker", default=None)


@contextmanager
def masking(masker: Masker) -> Iterator[Masker]:
    """Make ``masker`` the one :class:`MaskingLogFilter` applies in this task (and below)."""
    token = _CURRENT.set(masker)
    try:
        yield masker
    finally:
        _CURRENT.reset(token)


class RuntimeText(str):
    """A log argument the runtime chose itself (a tenant's id): shown as it is, never masked,
    so that a tenant whose secrets spell it (or that are masked whole) cannot hide from the
    operator which tenant a line is about."""

    __slots__ = ()


class MaskingLogFilter(logging.Filter):
    """Masks the current invocation's secrets and code out of a log record, and escapes
    control characters (tenant URLs and host names reach operator logs through it). The
    message's format and its :class:`RuntimeText` arguments are the runtime's own: the other
    arguments are masked one by one."""

    def filter(self, record: logging.LogRecord) -> bool:
        masker = _CURRENT.get()
        message = None
        args = record.args
        if (
            masker is not None
            and isinstance(args, tuple)
            and any(isinstance(arg, RuntimeText) for arg in args)
        ):
            shown = tuple(
                arg if isinstance(arg, RuntimeText) else _masked(masker, arg) for arg in args
            )
            try:
                message = str(record.msg) % shown
            except Exception:  # %d given a masked number: the whole message is masked below
                message = None
        if message is None:
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


def _masked(masker: Masker, arg: object) -> object:
    """A log argument with the secrets and the code masked: a string as text, anything else
    as its string when that holds one (the code as a number), else as it is."""
    if isinstance(arg, str):
        return masker.text(arg)
    shown = str(arg)
    masked = masker.text(shown)
    return arg if masked == shown else masked


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
