"""The HTTP provider base and its helpers, under their first name.

Kept so that plugins written against ``runtime.http_provider`` keep working; the kit lives in
:mod:`runtime.provider_kit` (import from there in new code).
"""

from __future__ import annotations

from runtime.provider_kit import (
    NOT_PROCESSED_STATUSES,
    BaseUrl,
    ErrorTable,
    HttpProvider,
    answered_error,
    configuration_error,
    digits_only,
    is_success,
    malformed_response,
    refused,
    validated,
)

__all__ = [
    "NOT_PROCESSED_STATUSES",
    "BaseUrl",
    "ErrorTable",
    "HttpProvider",
    "answered_error",
    "configuration_error",
    "digits_only",
    "is_success",
    "malformed_response",
    "refused",
    "validated",
]
