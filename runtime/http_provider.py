"""The base of every integrated HTTP provider: validate, build one request, send it, read it.

A subclass declares ``name``, ``label``, ``channels``, ``config_model`` and
``credentials_model``, and implements two pure methods:

- :meth:`HttpProvider.build_request`: the :class:`~runtime.http.HttpRequest` for one message
  (raise :func:`configuration_error` for a send that cannot work as configured);
- :meth:`HttpProvider.read_response`: a :class:`~runtime.providers.Receipt` from the answer,
  or a :class:`~runtime.errors.ProviderError` from the provider's own error table
  (:func:`refused`, :func:`answered_error`).

The base does the rest the same way for every provider: models validated with errors that name
fields and never echo values, the channel checked, the request sent through the provider's
pooled :class:`~runtime.http.ProviderHttp` within the attempt's budget, transport failures
classified, an unreadable 2xx turned into ``malformed_response`` (handed off: the provider took
it), and the code, the text and every credential redacted from every error message.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, SecretStr, ValidationError

from runtime.errors import ProviderError
from runtime.events import Channel
from runtime.http import HttpRequest, HttpResponse, ProviderHttp, redact
from runtime.providers import PhoneMessage, Receipt

__all__ = [
    "BaseUrl",
    "HttpProvider",
    "answered_error",
    "configuration_error",
    "digits_only",
    "malformed_response",
    "refused",
    "validated",
]

# HTTP statuses that say the request was not processed; any other 5xx may come after it was.
NOT_PROCESSED_STATUSES = frozenset({408, 429, 503})


def _check_base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or a fragment")
    return value.rstrip("/")


BaseUrl = Annotated[str, AfterValidator(_check_base_url)]
"""An absolute http(s) URL, kept without its trailing slash; paths are appended to it."""


def digits_only(e164: str) -> str:
    """``+447700900123`` -> ``447700900123``, for APIs that want the number without ``+``."""
    return e164.removeprefix("+")


def configuration_error(message: str) -> ProviderError:
    """A send that cannot work as configured, detected before any request is made."""
    return ProviderError("configuration_error", message, retryable=False, handed_off=False)


def refused(code: str | int, message: str, *, retryable: bool, status: int | None) -> ProviderError:
    """The provider said no: nothing was handed off, so the pipeline may fall back."""
    return ProviderError(str(code), message, retryable=retryable, handed_off=False, status=status)


def answered_error(
    response: HttpResponse,
    code: str | int | None,
    message: str,
    *,
    permanent_codes: frozenset[str] = frozenset(),
    retryable_codes: frozenset[str] = frozenset(),
) -> ProviderError:
    """An error answer classified by its HTTP status and the provider's code.

    Retryable: 408, 429 and 5xx, and the provider's ``retryable_codes``, unless the code is in
    ``permanent_codes``. Handed off: a 5xx other than 503, which a gateway may return after the
    provider queued the message (no fallback then: no second code).
    """
    status = response.status
    key = str(code) if code is not None else str(status)
    if key in permanent_codes:
        retryable = False
    else:
        retryable = key in retryable_codes or status in (408, 429) or status >= 500
    handed_off = status >= 500 and status not in NOT_PROCESSED_STATUSES
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


_Model = TypeVar("_Model", bound=BaseModel)


class HttpProvider:
    """A provider that delivers with one HTTP request per message (see the module docstring)."""

    name: str
    label: str
    channels: frozenset[Channel]
    config_model: type[BaseModel]
    credentials_model: type[BaseModel]
    # The session's total timeout is the attempt's budget: the pipeline needs no timer of its own.
    enforces_timeout = True

    def __init__(self, *, max_connections: int = 100) -> None:
        self.http = ProviderHttp(self.label, max_connections=max_connections)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def build_request(self, message: PhoneMessage, config: Any, credentials: Any) -> HttpRequest:
        """The request that sends ``message``."""
        raise NotImplementedError

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        """The receipt in ``response``; raise :class:`ProviderError` for an error answer.

        ``KeyError``, ``ValueError``, ``TypeError`` or ``IndexError`` raised while reading a 2xx
        answer become ``malformed_response``; while reading an error answer, a generic error
        classified by status.
        """
        raise NotImplementedError

    async def send(self, message: PhoneMessage, config: Any, credentials: Any) -> Receipt:
        """Deliver ``message``; raise :class:`ProviderError` saying whether it was handed off."""
        settings = self._validated(self.config_model, config, "config")
        secrets = self._validated(self.credentials_model, credentials, "credentials")
        hidden = (message.code, message.text, *_secret_values(secrets))
        try:
            if message.channel not in self.channels:
                raise configuration_error(
                    f"{self.label} cannot send {message.channel} messages "
                    f"(it sends {', '.join(sorted(self.channels))})"
                )
            request = self.build_request(message, settings, secrets)
            response = await self.http.send(request, budget=message.timeout, secrets=hidden)
            return self._read(response, message)
        except ProviderError as exc:
            exc.message = redact(exc.message, hidden)
            exc.args = (f"[{exc.code}] {exc.message}",)
            raise

    def _read(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        try:
            return self.read_response(response, message)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
            if 200 <= response.status < 300:
                raise malformed_response(
                    self.label, type(exc).__name__, status=response.status
                ) from None
            raise answered_error(
                response, None, f"{self.label} answered HTTP {response.status}"
            ) from None

    async def aclose(self) -> None:
        """Close the pooled connections; a later send opens new ones."""
        await self.http.aclose()

    def _validated(self, model: type[_Model], value: Any, what: str) -> _Model:
        return validated(model, value, label=self.label, what=what)


def validated(model: type[_Model], value: Any, *, label: str, what: str) -> _Model:
    """``value`` as ``model`` (``what``: "config" or "credentials"), or ``configuration_error``
    naming the fields only: pydantic's own message would echo the values, i.e. secrets."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise configuration_error(f"invalid {label} {what}: {fields}") from None


def _secret_values(model: BaseModel) -> tuple[str, ...]:
    """Every credential value in ``model`` (secret or not), for redaction."""
    values: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and len(value) >= 4:
            values.append(value)
    return tuple(values)
