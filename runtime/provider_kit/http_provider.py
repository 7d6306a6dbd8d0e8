"""The base of every integrated HTTP provider: validate, build one request, send it, read it.

A subclass names its models as type arguments (``HttpProvider[InfobipConfig,
InfobipCredentials]``), declares ``name``, ``label``, ``channels``, ``config_model`` and
``credentials_model``, and implements two pure methods:

- :meth:`HttpProvider.build_request`: the :class:`~runtime.http.HttpRequest` for one message
  (raise :func:`~runtime.provider_kit.errors.configuration_error` for a send that cannot work
  as configured);
- :meth:`HttpProvider.read_response`: a :class:`~runtime.providers.Receipt` from the answer,
  or a :class:`~runtime.errors.ProviderError` from the provider's own
  :class:`~runtime.provider_kit.errors.ErrorTable` (``refused``, ``answered_error``).

The base does the rest the same way for every provider: models validated with errors that name
fields and never echo values, the channel checked, the request sent through the provider's
:class:`~runtime.http.PooledHttp` within the attempt's budget, transport failures classified,
an unreadable 2xx turned into ``malformed_response`` (handed off: the provider took it), and
the code, the text and every credential redacted from every error message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from typing_extensions import TypeVar as DefaultedTypeVar

from runtime.errors import ProviderError
from runtime.events import Channel
from runtime.http import HttpObserver, HttpRequest, HttpResponse, PooledHttp, redact
from runtime.provider_kit.base import ProviderBase
from runtime.provider_kit.errors import (
    answered_error,
    configuration_error,
    is_success,
    malformed_response,
)
from runtime.provider_kit.models import secret_values, validated
from runtime.providers import PhoneMessage, Receipt

__all__ = ["HttpProvider"]

# Defaulted to Any, as in runtime.providers.Provider: a bare HttpProvider is HttpProvider[Any, Any].
ConfigT = DefaultedTypeVar("ConfigT", bound=BaseModel, default=Any)
CredentialsT = DefaultedTypeVar("CredentialsT", bound=BaseModel, default=Any)
_Model = TypeVar("_Model", bound=BaseModel)


class HttpProvider(ProviderBase, Generic[ConfigT, CredentialsT]):
    """A provider that delivers with one HTTP request per message (see the module docstring)."""

    name: str
    label: str
    channels: frozenset[Channel]
    config_model: type[ConfigT]
    credentials_model: type[CredentialsT]
    # The session's total timeout is the attempt's budget: the pipeline needs no timer of its own.
    enforces_timeout = True
    accepts_observer = True  # the observer goes to PooledHttp.send

    def __init__(self, *, max_connections: int = 100) -> None:
        self.http = PooledHttp(self.label, max_connections=max_connections)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def build_request(
        self, message: PhoneMessage, config: ConfigT, credentials: CredentialsT
    ) -> HttpRequest:
        """The request that sends ``message``."""
        raise NotImplementedError

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        """The receipt in ``response``; raise :class:`ProviderError` for an error answer.

        ``KeyError``, ``ValueError``, ``TypeError``, ``IndexError`` or ``AttributeError``
        raised while reading a 2xx answer become ``malformed_response``; while reading an
        error answer, a generic error classified by status.
        """
        raise NotImplementedError

    async def send(
        self,
        message: PhoneMessage,
        config: ConfigT | Mapping[str, Any],
        credentials: CredentialsT | Mapping[str, Any],
        *,
        observer: HttpObserver | None = None,
    ) -> Receipt:
        """Deliver ``message``; raise :class:`ProviderError` saying whether it was handed off.

        ``config`` and ``credentials`` may also come as plain mappings (validated here).
        ``observer`` sees the request (a recording) or answers it (a replay).
        """
        settings = self._validated(self.config_model, config, "config")
        secrets = self._validated(self.credentials_model, credentials, "credentials")
        hidden = (message.code, message.text, *secret_values(secrets))
        try:
            request = self._request(message, settings, secrets)
            response = await self.http.send(
                request,
                budget=message.timeout,
                secrets=hidden,
                observer=observer,
                tenant=message.tenant,
            )
            return self._read(response, message)
        except ProviderError as exc:
            exc.message = redact(exc.message, hidden)
            exc.args = (f"[{exc.code}] {exc.message}",)
            raise

    def check(
        self,
        message: PhoneMessage,
        config: ConfigT | Mapping[str, Any],
        credentials: CredentialsT | Mapping[str, Any],
    ) -> None:
        """Raise the ``configuration_error`` that :meth:`send` would raise before any request
        (models, channel, :meth:`build_request`'s own checks); send nothing."""
        settings = self._validated(self.config_model, config, "config")
        secrets = self._validated(self.credentials_model, credentials, "credentials")
        self._request(message, settings, secrets)

    def _request(
        self, message: PhoneMessage, config: ConfigT, credentials: CredentialsT
    ) -> HttpRequest:
        if message.channel not in self.channels:
            raise configuration_error(
                f"{self.label} cannot send {message.channel} messages "
                f"(it sends {', '.join(sorted(self.channels))})"
            )
        return self.build_request(message, config, credentials)

    def _read(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        try:
            return self.read_response(response, message)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
            if is_success(response.status):
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
