"""What a provider's answer means for the pipeline: retry it? was the message handed off?

A provider declares its error codes once, as data (an :class:`ErrorTable`), and the helpers
:func:`refused` and :func:`answered_error` read it, so that every provider applies the same
rules: a code no retry fixes is never retried, a rate limit is retried and never counts as
handed off, and a 5xx other than 503 without a code that says otherwise counts as handed off
(a gateway may answer it after the provider queued the message: no fallback, no second code).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from runtime.errors import ProviderError
from runtime.http import HttpResponse

__all__ = [
    "NOT_PROCESSED_STATUSES",
    "NO_TABLE",
    "ErrorTable",
    "answered_error",
    "configuration_error",
    "is_success",
    "malformed_response",
    "refused",
]

NOT_PROCESSED_STATUSES = frozenset({408, 429, 503})
"""HTTP statuses that say the request was not processed; any other 5xx may come after it was."""


def is_success(status: int) -> bool:
    """Whether ``status`` is a 2xx: the provider took the request (its body says the rest)."""
    return 200 <= status < 300


def _codes(values: Iterable[str | int]) -> frozenset[str]:
    return frozenset(str(value) for value in values)


@dataclass(frozen=True, slots=True, init=False)
class ErrorTable:
    """A provider's error codes by what they mean (codes are compared as strings).

    - ``permanent``: no retry fixes it (a bad key, an invalid number). Never retried; handed
      off only by the HTTP status it came with, unless ``final`` is set.
    - ``retryable``: worth another try (an internal error); handed off by the HTTP status.
    - ``throttled``: rate limited, refused before the provider took the message: retryable,
      never handed off, whatever the status.
    - ``handed_off``: the provider has the message whatever the status (a request already in
      flight under the same idempotency key); retryable only when also in ``retryable``.
    - ``final``: the provider's ``permanent`` codes are its own last word, so the message was
      not taken even under a 5xx (Amazon SNS, Clickatell, Telesign document them so).
    - ``unknown_retryable``: whether a refusal in a success answer with a code in no set is
      worth another try (Mitto's table says so); by default an unknown refusal is not retried.
    """

    permanent: frozenset[str]
    retryable: frozenset[str]
    throttled: frozenset[str]
    handed_off: frozenset[str]
    final: bool
    unknown_retryable: bool

    def __init__(
        self,
        *,
        permanent: Iterable[str | int] = (),
        retryable: Iterable[str | int] = (),
        throttled: Iterable[str | int] = (),
        handed_off: Iterable[str | int] = (),
        final: bool = False,
        unknown_retryable: bool = False,
    ) -> None:
        sets = {
            "permanent": _codes(permanent),
            "retryable": _codes(retryable),
            "throttled": _codes(throttled),
            "handed_off": _codes(handed_off),
        }
        clash = sets["permanent"] & (sets["retryable"] | sets["throttled"])
        if clash:
            raise ValueError(f"codes both permanent and retryable: {', '.join(sorted(clash))}")
        for name, codes in sets.items():
            object.__setattr__(self, name, codes)
        object.__setattr__(self, "final", final)
        object.__setattr__(self, "unknown_retryable", unknown_retryable)

    def __contains__(self, code: object) -> bool:
        key = str(code)
        return (
            key in self.permanent
            or key in self.retryable
            or key in self.throttled
            or key in self.handed_off
        )

    def refusal_is_retryable(self, code: str | int) -> bool:
        """Whether a refusal coded ``code`` is worth another try."""
        key = str(code)
        if key in self.permanent:
            return False
        if key in self.retryable or key in self.throttled:
            return True
        return self.unknown_retryable and key not in self.handed_off

    def says_refused(self, code: str | int) -> bool:
        """Whether ``code`` alone says the provider did not take the message, whatever the
        HTTP status: a rate limit, or a permanent code of a ``final`` table."""
        key = str(code)
        return key in self.throttled or (self.final and key in self.permanent)


NO_TABLE = ErrorTable()
"""A provider without codes of its own: the HTTP status alone classifies an error."""


def configuration_error(message: str) -> ProviderError:
    """A send that cannot work as configured, detected before any request is made."""
    return ProviderError("configuration_error", message, retryable=False, handed_off=False)


def refused(
    code: str | int,
    message: str,
    *,
    status: int | None,
    table: ErrorTable = NO_TABLE,
    retryable: bool | None = None,
) -> ProviderError:
    """The provider said no: nothing was handed off, so the pipeline may fall back.

    Retryable as ``table`` says for ``code`` (:meth:`ErrorTable.refusal_is_retryable`), or as
    ``retryable`` says when the provider's answer itself tells (a status, not a code).
    """
    again = table.refusal_is_retryable(code) if retryable is None else retryable
    return ProviderError(str(code), message, retryable=again, handed_off=False, status=status)


def answered_error(
    response: HttpResponse,
    code: str | int | None,
    message: str,
    *,
    table: ErrorTable = NO_TABLE,
) -> ProviderError:
    """An error answer classified by the provider's ``code`` (``table``) and the HTTP status.

    Without a code (or with one the table does not know): 408, 429 and 5xx are retryable, any
    other status is not; a 5xx other than 503 counts as handed off. A code in ``table`` says
    more: see :class:`ErrorTable`. The error's code is ``code``, else the HTTP status.
    """
    status = response.status
    key = str(code) if code is not None else str(status)
    if code is not None and table.says_refused(key):
        return refused(key, message, status=status, table=table)
    if key in table.permanent:
        retryable = False
    else:
        retryable = key in table.retryable or status in (408, 429) or status >= 500
    handed_off = key in table.handed_off or (status >= 500 and status not in NOT_PROCESSED_STATUSES)
    return ProviderError(key, message, retryable=retryable, handed_off=handed_off, status=status)


def malformed_response(label: str, detail: str, *, status: int) -> ProviderError:
    """A success status whose body cannot be read: the provider took the message."""
    return ProviderError(
        "malformed_response",
        f"{label} accepted the request but its answer is unreadable ({detail})",
        retryable=False,
        handed_off=True,
        status=status,
    )
