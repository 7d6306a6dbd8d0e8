"""Twilio and transport failures as :class:`~runtime.errors.ProviderError`.

What matters most is ``handed_off``: false only when Twilio certainly did not accept the
message (a 4xx refusal, 429 or 503, or no connection was made), so that the pipeline may fall
back; true whenever the request may have been accepted (a timeout after sending, a 500, 502
or 504, which a gateway or Twilio may return after queueing it), so that no user gets two
codes.
Messages never carry the OTP or the auth token: every text is redacted before use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from runtime.errors import ProviderError
from runtime.http import redact
from runtime.provider_kit import ErrorTable, configuration_error

__all__ = [
    "ERRORS",
    "NOT_PROCESSED_STATUSES",
    "configuration_error",
    "provider_error",
    "redact",
]

ERRORS = ErrorTable(
    # Twilio error codes (docs/errors) that no retry fixes; every other 4xx is permanent too.
    permanent={20003, 20404, 13224, 21211, 21212, 21215, 21219, 21408, 21606, 21608, 21610}
    | {21612, 21614, 21617},
    retryable={20429},  # too many requests
)
# Server answers that say the request was not processed; any other 5xx may come after it was.
NOT_PROCESSED_STATUSES = frozenset({429, 503})


def provider_error(exc: Exception, *, secrets: Iterable[str] = ()) -> ProviderError:
    """Classify ``exc``, raised while sending one message (raise the result ``from exc``)."""
    secrets = tuple(secrets)
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        return _refused(exc, secrets)
    detail = redact(f"{type(exc).__name__}: {exc}".removesuffix(": "), secrets)
    if isinstance(exc, aiohttp.InvalidURL):
        return configuration_error(f"invalid Twilio URL ({detail})")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return _not_sent("connect_timeout", f"could not connect to Twilio in time ({detail})")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _not_sent("connection_error", f"could not connect to Twilio ({detail})")
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return _maybe_sent("timeout", f"no answer from Twilio in time ({detail})")
    if isinstance(exc, aiohttp.ClientError):
        return _maybe_sent("disconnected", f"connection lost after sending ({detail})")
    if isinstance(exc, ValueError | KeyError | TypeError | AttributeError):
        # What the SDK raises while parsing a 2xx answer; error answers never get here.
        return ProviderError(
            "malformed_response",
            f"Twilio accepted the request but its answer is unreadable ({type(exc).__name__})",
            retryable=False,
            handed_off=True,
        )
    return ProviderError(
        "unexpected_error",
        f"unexpected failure while sending ({type(exc).__name__})",
        retryable=False,
        handed_off=True,
    )


def _not_sent(code: str, message: str) -> ProviderError:
    return ProviderError(code, message, retryable=True, handed_off=False)


def _maybe_sent(code: str, message: str) -> ProviderError:
    return ProviderError(
        code, f"{message}; Twilio may have accepted it", retryable=True, handed_off=True
    )


def _refused(
    exc: TwilioRestException | TwilioServiceException, secrets: tuple[str, ...]
) -> ProviderError:
    """Twilio answered with an error status: a 4xx, 429 or 503 refused the message; another
    5xx is ambiguous (Twilio or a gateway may have queued it first), so it counts as handed off."""
    status = _as_int(exc.status)
    code = _as_int(exc.code)
    if str(code) in ERRORS.permanent:
        retryable = False
    else:
        retryable = str(code) in ERRORS.retryable or status == 429 or (status or 0) >= 500
    if isinstance(exc, TwilioServiceException):
        text = " - ".join(str(part) for part in (exc.title, exc.detail) if part)
    else:
        text = str(exc.msg or "")
    message = redact(f"Twilio answered HTTP {status}: {text or 'no details'}", secrets)
    ambiguous = (status or 0) >= 500 and status not in NOT_PROCESSED_STATUSES
    return ProviderError(
        str(code if code is not None else exc.code or status),
        message,
        retryable=retryable,
        handed_off=ambiguous,
        status=status,
    )


def _as_int(value: object) -> int | None:
    """An int from Twilio's ``status``/``code``, which RFC 9457 bodies may send as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
