"""The provider kit: everything a provider plugin builds on, from one import.

- :class:`ProviderBase`: what every provider declares to the pipeline, with its defaults;
- :class:`HttpProvider`: the base of a provider with one HTTP request per message;
- :class:`ProviderSettings` and :class:`ProviderCredentials`: the base models (unknown fields
  refused, frozen);
- field types: :data:`BaseUrl`, :data:`OriginUrl`, :data:`AbsoluteUrl`, :data:`SenderId`,
  :data:`E164Number`;
- the provider's error codes as data (:class:`ErrorTable`) and the helpers that read it
  (:func:`refused`, :func:`answered_error`), :func:`configuration_error`,
  :func:`malformed_response` and :func:`is_success`;
- :func:`is_gsm7`: whether a text fits the GSM 7-bit alphabet (else say Unicode).

Modules: ``base``, ``errors`` (what an answer means), ``encoding``, ``fields``, ``models``,
``http_provider``.
"""

from __future__ import annotations

from runtime.provider_kit.base import ProviderBase
from runtime.provider_kit.encoding import is_gsm7
from runtime.provider_kit.errors import (
    NO_TABLE,
    NOT_PROCESSED_STATUSES,
    ErrorTable,
    answered_error,
    configuration_error,
    is_success,
    malformed_response,
    refused,
)
from runtime.provider_kit.fields import (
    AbsoluteUrl,
    BaseUrl,
    E164Number,
    OriginUrl,
    SenderId,
    digits_only,
)
from runtime.provider_kit.http_provider import HttpProvider
from runtime.provider_kit.models import (
    ProviderCredentials,
    ProviderSettings,
    secret_values,
    validated,
)

__all__ = [
    "NOT_PROCESSED_STATUSES",
    "NO_TABLE",
    "AbsoluteUrl",
    "BaseUrl",
    "E164Number",
    "ErrorTable",
    "HttpProvider",
    "OriginUrl",
    "ProviderBase",
    "ProviderCredentials",
    "ProviderSettings",
    "SenderId",
    "answered_error",
    "configuration_error",
    "digits_only",
    "is_gsm7",
    "is_success",
    "malformed_response",
    "refused",
    "secret_values",
    "validated",
]
