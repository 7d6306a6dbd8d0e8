"""Amazon SNS's error codes (the ``Code`` of an ``<ErrorResponse>``) and what each one means.

The sets are the ones SNS's API reference and botocore's model list for ``Publish``, and the
errors every AWS Query API may answer; :data:`ERRORS` is the table the provider reads.
"""

from __future__ import annotations

from runtime.provider_kit import ErrorTable

__all__ = [
    "COMMON_ERRORS",
    "ERRORS",
    "INTERNAL_CODES",
    "PERMANENT_CODES",
    "PUBLISH_ERRORS",
    "THROTTLING_CODES",
]

PUBLISH_ERRORS = frozenset(
    {
        # The errors of Publish, and nothing else, as SNS's API reference and botocore's model
        # of it list them. (OptedOut is not one: it belongs to CreateSMSSandboxPhoneNumber.)
        "AuthorizationError",  # the key may not publish (IAM), or SMS is not enabled
        "EndpointDisabled",
        "InternalError",
        "InvalidParameter",  # e.g. a number SNS cannot send to, a sender ID it rejects
        "ParameterValueInvalid",  # botocore's InvalidParameterValueException
        "InvalidSecurity",  # not signed with SigV4 / not over HTTPS
        "KMSAccessDenied",
        "KMSDisabled",
        "KMSInvalidState",
        "KMSNotFound",
        "KMSOptInRequired",
        "KMSThrottling",
        "NotFound",
        "PlatformApplicationDisabled",
        "ValidationException",
    }
)

COMMON_ERRORS = frozenset(
    {
        # Errors every AWS Query API may answer (AWS's "Common Errors" and SigV4 errors).
        "InvalidParameterValue",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "AccessDenied",
        "ExpiredToken",
        "OptInRequired",
        "InternalFailure",
        "ServiceUnavailable",
        # Throttling, as botocore's retry rules name it for every service.
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        # SNS's own ThrottledException shape answers the code "Throttled" (HTTP 429).
        "Throttled",
    }
)

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "Throttled",
        "KMSThrottling",
    }
)
"""Rate limited: SNS refused the message before taking it (retryable, not handed off)."""

INTERNAL_CODES = frozenset({"InternalError", "InternalFailure", "ServiceUnavailable"})
"""Retryable; handed off or not by the HTTP status (a 500 may come after SNS took it)."""

PERMANENT_CODES = (PUBLISH_ERRORS | COMMON_ERRORS) - THROTTLING_CODES - INTERNAL_CODES
"""Codes no retry fixes: SNS refused the message without taking it."""


ERRORS = ErrorTable(
    permanent=PERMANENT_CODES,
    retryable=INTERNAL_CODES,
    throttled=THROTTLING_CODES,
    final=True,  # SNS's own codes: a permanent one means it did not take the message
)
