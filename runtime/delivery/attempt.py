"""One try at one provider, turned into an :class:`Attempt` whatever happens.

The attempt is where the product's promise is decided: any failure becomes a
:class:`ProviderError` saying whether the message may have reached the carrier, and only a
failure that did not hand the message off may ever lead to a second send (the fallback).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from runtime.errors import (
    ConfigurationError,
    MissingCredentialsError,
    ProviderError,
    UnknownProviderError,
)
from runtime.events import Attempt
from runtime.logs import scrub
from runtime.providers import PhoneMessage, Provider, Receipt, enforces_timeout
from runtime.templates import spell_code
from runtime.wording import problems

__all__ = [
    "GRACE",
    "as_provider_error",
    "failed_attempt",
    "log_scrubbed",
    "run_attempt",
    "validation_problem",
]

log = logging.getLogger("runtime.delivery")
GRACE = 0.5  # seconds a provider gets past its budget before the pipeline abandons it

Send = Callable[[], Awaitable[Receipt]]


async def run_attempt(
    provider: Provider,
    message: PhoneMessage,
    send: Send,
    *,
    fallback: bool,
    secrets: list[str],
    started: float,
) -> tuple[Attempt, Receipt | None]:
    """Await ``send()`` within the budget; the attempt, and the receipt when it delivered."""
    try:
        if enforces_timeout(provider):
            receipt = await send()  # its HTTP client's total timeout is the budget
        else:
            async with asyncio.timeout(message.timeout + GRACE):
                receipt = await send()
    except Exception as exc:
        error = as_provider_error(exc, provider.name, message.timeout, secrets)
        return failed_attempt(provider.name, error, fallback, secrets, started), None
    attempt = Attempt(
        provider=provider.name,
        fallback=fallback,
        outcome="delivered",
        latency_ms=(time.perf_counter() - started) * 1000,
        message_id=receipt.message_id,
    )
    return attempt, receipt


def failed_attempt(
    name: str, error: ProviderError, fallback: bool, secrets: list[str], started: float
) -> Attempt:
    return Attempt(
        provider=name,
        fallback=fallback,
        outcome="failed",
        latency_ms=(time.perf_counter() - started) * 1000,
        error_code=error.code,
        error=scrub(error.message, secrets),
        retryable=error.retryable,
        handed_off=error.handed_off,
    )


def log_scrubbed(what: str, exc: BaseException, secrets: list[str]) -> None:
    """Log ``exc`` with its traceback, with the code and credentials masked out of it."""
    secrets = [*secrets, *(spell_code(s) for s in secrets[:1])]
    text = scrub("".join(traceback.format_exception(exc)), secrets)
    log.error("%s:\n%s", what, text)


def as_provider_error(
    exc: Exception, provider: str, budget: float, secrets: list[str]
) -> ProviderError:
    """Any failure of an attempt as a :class:`ProviderError`, which drives the fallback rules.

    A configuration problem was found before sending (not handed off). A blown time budget or
    an unexpected exception (a plugin bug) may have happened after the hand-off, so both count
    as handed off: the pipeline then never falls back and never sends a second code.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ConfigurationError):
        code = {
            UnknownProviderError: "unknown_provider",
            MissingCredentialsError: "missing_credentials",
        }.get(type(exc), "configuration_error")
        return ProviderError(code, str(exc), retryable=False, handed_off=False)
    if isinstance(exc, TimeoutError):
        return ProviderError(
            "timeout", f"no answer within the {budget:g} s budget", retryable=True, handed_off=True
        )
    log_scrubbed(f"provider {provider!r} raised {type(exc).__name__}", exc, secrets)
    return ProviderError(
        "provider_crashed", f"{type(exc).__name__}: {exc}", retryable=False, handed_off=True
    )


def validation_problem(provider: str, tenant: str, exc: Any) -> ConfigurationError:
    """A tenant's provider settings that do not fit the models, without the input values."""
    fields = problems(exc.errors(include_input=False, include_url=False))
    return ConfigurationError(f"tenant {tenant!r}, provider {provider!r}: {fields}")
