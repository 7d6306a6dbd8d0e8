"""One exception tree for the whole runtime.

Every error the runtime raises on purpose derives from :class:`PhoneActionsError`, so a caller
can catch one class; third-party errors are wrapped with ``raise ... from exc``::

    PhoneActionsError
    ├── InvalidInputError             bad input; names the field (``.field``)
    │   └── LimitExceededError        a limit reached (code size, secrets, versions, ...)
    ├── NotFoundError                 no such object for this tenant (another tenant's
    │                                 objects are never revealed)
    ├── ConflictError                 the change clashes with what is stored (a taken name)
    ├── ConfigurationError            settings or tenant configuration is unusable
    │   ├── UnknownTenantError        no tenant with that id
    │   ├── UnknownProviderError      no provider plugin with that name
    │   └── MissingCredentialsError   a credential's environment variable is unset
    ├── PluginError                   a plugin failed to load or declares an unknown hook
    ├── StoreUnavailableError         the database could not be reached or did not answer in
    │                                 time (names the database, password masked)
    └── ProviderError                 a provider could not deliver (``code``, ``retryable``,
                                      ``handed_off``); drives the fallback rules

A delivery never raises :class:`ProviderError` to its caller: the pipeline turns it into a
failed attempt in the :class:`~runtime.events.DeliveryReport`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = [
    "UNKNOWN_PROPERTY",
    "ConfigurationError",
    "ConflictError",
    "InvalidInputError",
    "LimitExceededError",
    "MissingCredentialsError",
    "NotFoundError",
    "PhoneActionsError",
    "PluginError",
    "Problem",
    "ProviderError",
    "StoreUnavailableError",
    "UnknownProviderError",
    "UnknownTenantError",
]


UNKNOWN_PROPERTY = "not a known property (check the spelling)"
"""What every body check says of a property it does not know (the API, log streams, usage
triggers): one wording, whichever layer found it."""


class PhoneActionsError(Exception):
    """Base class of every error raised by phone-actions on purpose."""


Problem = tuple[tuple[str | int, ...], str]
"""One thing wrong with an input: where (a location, as pydantic's ``loc``) and what."""

_VALIDATOR_PREFIX = re.compile(r"^(?:Value error|Assertion failed), ")


class InvalidInputError(PhoneActionsError, ValueError):
    """Input that cannot be accepted; ``field`` names where (dotted path), when known.

    ``problems`` holds each field's own message when the error comes from validation
    (:meth:`from_validation_errors`), so that an answer can name each property in its own
    shape (the API: ``Payload validation error: 'MESSAGE' on property FIELD.``)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.problems: tuple[Problem, ...] = ()
        super().__init__(f"{field}: {message}" if field else message)

    @classmethod
    def from_validation_errors(
        cls, errors: Sequence[Any], *, prefix: str = ""
    ) -> InvalidInputError:
        """Build one error from pydantic's ``ValidationError.errors()``, naming each field.

        A validator's own message loses pydantic's ``Value error, `` in front of it; the
        input is never shown (pydantic's messages do not hold it, ours never repeat it)."""
        parts = []
        problems: list[Problem] = []
        first_field = None
        for err in errors:
            where = tuple(p for p in (prefix, *err.get("loc", ())) if p != "")
            loc = ".".join(str(p) for p in where)
            message = _VALIDATOR_PREFIX.sub("", str(err.get("msg", "invalid")))
            first_field = first_field or loc or None
            parts.append(f"{loc or '(root)'}: {message}")
            problems.append((where, message))
        error = cls("; ".join(parts) or "invalid input")
        error.field = first_field
        error.problems = tuple(problems)
        return error


class LimitExceededError(InvalidInputError):
    """A limit is reached (Auth0's: 100 kB of code, 30 secrets, 50 versions, 100 actions per
    tenant, ...); the message names the field and the limit."""


class NotFoundError(PhoneActionsError, LookupError):
    """No object with that id for this tenant. Another tenant's object raises this too, so
    that its existence is never revealed."""


class ConflictError(PhoneActionsError):
    """The change contradicts what is stored: a name already taken, a bound action deleted."""


class ConfigurationError(PhoneActionsError):
    """The operator's settings or a tenant's configuration cannot be used as written."""


class UnknownTenantError(ConfigurationError, LookupError):
    """No tenant with the requested id is configured."""


class UnknownProviderError(ConfigurationError, LookupError):
    """No registered provider plugin has the requested name."""


class MissingCredentialsError(ConfigurationError):
    """A credential that the tenant configuration names is not available."""


class PluginError(PhoneActionsError):
    """A plugin could not be loaded, or implements a hook that does not exist."""


class StoreUnavailableError(PhoneActionsError):
    """The database could not be reached or did not answer within its time budget.

    The message names the database (its URL with the password masked) and what failed, in one
    line: the caller reports it and carries on, so a slow or lost database never hangs a
    delivery and never shows a traceback. ``running`` is true when the call had already
    started when its time ran out: it may still complete (a row may still be written).
    """

    def __init__(self, message: str, *, running: bool = False) -> None:
        super().__init__(message)
        self.running = running


class ProviderError(PhoneActionsError):
    """A provider failed to deliver one message.

    ``code`` is the provider's own error code when it gave one (``"21211"``), else one of the
    runtime's (``"timeout"``, ``"connection_error"``, ``"configuration_error"``, ...).
    ``retryable`` says whether the same message may succeed later or elsewhere.
    ``handed_off`` says whether the message may already have reached the carrier: when true the
    pipeline never falls back, so that no user receives two codes.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        handed_off: bool,
        status: int | None = None,
    ) -> None:
        self.code = str(code)
        self.message = message
        self.retryable = retryable
        self.handed_off = handed_off
        self.status = status
        super().__init__(f"[{self.code}] {message}")
