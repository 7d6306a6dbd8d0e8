"""MessageBird / Bird provider plugin: one-time codes by SMS (no voice), on either API.

Bird runs two platforms with keys that do not cross (a ``bk_`` key gets 401 on the legacy
host), so the tenant picks one with ``api``:

- ``bird`` (default, the current platform; bird-sdk-python): ``POST {base_url}/v1/sms/messages``
  with ``Authorization: Bearer <key>`` and JSON ``{to, from, text, category}``; the answer is an
  SMSMessage ``{id, status}``. ``base_url`` defaults, as in Bird's SDK, to
  ``https://{region}.platform.bird.com`` with the region read from the key's ``bk_{region}_``
  (or ``bm_{region}_``) prefix. Errors are ``{"error": {"type", "code", "message", ...}}`` and
  the reported code is ``error.type``. Every request carries ``Idempotency-Key: <delivery
  id>``, so that Bird replays its first answer to a retried request instead of sending again;
  a 409 about that key means Bird already has the delivery (handed off).
- ``legacy`` (the MessageBird REST API; python-rest-api): ``POST {base_url}/messages`` with
  ``Authorization: AccessKey <key>`` and JSON ``{originator, recipients: [digits], body}``;
  201 ``{id, ...}``. Errors are ``{"errors": [{"code", "description", "parameter"}]}``, the
  code is the first error's. ``base_url`` defaults to ``https://rest.messagebird.com``.

Neither API has a text-to-speech call here: Bird's voice is read-only in its SDK, and the
legacy ``/voicemessages`` belongs to a platform new accounts no longer get.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, model_validator

from runtime import hookimpl
from runtime.errors import ProviderError
from runtime.events import Channel
from runtime.http import HttpRequest, HttpResponse
from runtime.provider_kit import (
    BaseUrl,
    ErrorTable,
    HttpProvider,
    ProviderCredentials,
    ProviderSettings,
    answered_error,
    configuration_error,
    digits_only,
    is_success,
)
from runtime.providers import PhoneMessage, Receipt

if TYPE_CHECKING:
    from runtime.providers import Provider
    from runtime.settings import Settings

__all__ = [
    "MessageBirdConfig",
    "MessageBirdCredentials",
    "MessageBirdProvider",
    "bird_base_url",
    "register_providers",
]

LEGACY_BASE_URL = "https://rest.messagebird.com"
BIRD_CATEGORY = "authentication"  # a one-time code is Bird's "authentication" traffic

# Bird's key prefix carries its region (bird-sdk-python ``_infer_region``).
_BIRD_REGION = re.compile(r"^(?:bk|bm)_([a-z]{2}[0-9]+)_.+")

# Bird's request deduplication (its API reference, "Idempotency"): a POST with the same key
# within about 3 hours gets the first request's answer replayed instead of a second send. The
# key is any non-empty string of at most 255 characters.
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX = 255
# A 409 about the key means an earlier request of this delivery reached Bird: still in flight
# (E01004 RequestInProgress, or the error type idempotency_key_in_use) or done with another
# body (E01005 IdempotencyKeyReuse). Either way Bird has this delivery: handed off.
IDEMPOTENCY_IN_FLIGHT = frozenset({"E01004", "RequestInProgress", "idempotency_key_in_use"})
IDEMPOTENCY_REUSED = frozenset({"E01005", "IdempotencyKeyReuse"})

# Legacy error codes (from memory, not verified): 2 auth, 9 missing params, 10 invalid params,
# 20 not found, 21 bad request, 25 not enough balance, 98 not found: permanent. 99 is
# MessageBird's internal error: retryable, handed off or not by its HTTP status.
LEGACY_ERRORS = ErrorTable(permanent={"2", "9", "10", "20", "21", "25", "98"}, retryable={"99"})

# Bird error types (bird-sdk-python ``ErrorType``); internal_error and
# service_unavailable_error are classified by their 5xx status.
BIRD_ERRORS = ErrorTable(
    # No retry fixes these.
    permanent={
        "bad_request_error",
        "auth_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "conflict_error",
        "precondition_error",
        "payload_too_large_error",
        "misdirected_error",
        "validation_error",
        "not_implemented_error",
    },
    # The rate limit (429); and a request of this delivery still in flight, which a retry with
    # the same key answers with the first request's answer.
    retryable={"rate_limit_error", *IDEMPOTENCY_IN_FLIGHT},
    handed_off=IDEMPOTENCY_IN_FLIGHT | IDEMPOTENCY_REUSED,
)


def bird_base_url(access_key: str) -> str | None:
    """``https://{region}.platform.bird.com`` for a ``bk_{region}_…`` key, else None."""
    match = _BIRD_REGION.match(access_key)
    return f"https://{match.group(1)}.platform.bird.com" if match else None


class MessageBirdConfig(ProviderSettings):
    """A tenant's public MessageBird / Bird settings."""

    api: Literal["bird", "legacy"] = Field(
        default="bird",
        description="`bird`: the current Bird platform (`/v1/sms/messages`, `bk_` keys); "
        "`legacy`: the MessageBird REST API (`/messages`, legacy access keys).",
    )
    sender: str | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        pattern=r"^(\+?[0-9]{3,15}|[A-Za-z0-9 ]{1,11})$",
        description="Sender number or alphanumeric id: Bird `from` (optional: Bird picks the "
        "workspace's sender when unset), legacy `originator` (required).",
    )
    base_url: BaseUrl | None = Field(
        default=None,
        description="API origin. Default: for `bird`, `https://{region}.platform.bird.com` "
        "from the access key's `bk_{region}_` prefix; for `legacy`, "
        "`https://rest.messagebird.com` (tests: a local stub).",
    )

    @model_validator(mode="after")
    def _legacy_needs_originator(self) -> MessageBirdConfig:
        if self.api == "legacy" and self.sender is None:
            raise ValueError("the legacy API needs a sender (originator)")
        return self


class MessageBirdCredentials(ProviderCredentials):
    """A tenant's MessageBird / Bird secret (write-only)."""

    access_key: SecretStr = Field(
        min_length=1,
        description="Bird API key (`bk_{region}_…`, sent as `Bearer`) or legacy access key "
        "(sent as `AccessKey`).",
    )


class MessageBirdProvider(HttpProvider[MessageBirdConfig, MessageBirdCredentials]):
    """SMS through Bird or the legacy MessageBird API."""

    name = "messagebird"
    label = "MessageBird"
    channels = frozenset[Channel]({"sms"})
    config_model = MessageBirdConfig
    credentials_model = MessageBirdCredentials

    def build_request(
        self,
        message: PhoneMessage,
        config: MessageBirdConfig,
        credentials: MessageBirdCredentials,
    ) -> HttpRequest:
        key = credentials.access_key.get_secret_value()
        if config.api == "legacy":
            if _BIRD_REGION.match(key):
                raise configuration_error(
                    "a Bird API key (bk_…) does not work on the legacy MessageBird API; "
                    'set api = "bird" or use a legacy access key'
                )
            return HttpRequest.json(
                (config.base_url or LEGACY_BASE_URL) + "/messages",
                {
                    "originator": config.sender,
                    "recipients": [digits_only(message.recipient)],
                    "body": message.text,
                },
                {"Authorization": f"AccessKey {key}"},
            )
        base_url = config.base_url or bird_base_url(key)
        if base_url is None:
            raise configuration_error(
                "cannot tell the Bird region: set base_url or use a bk_{region}_… API key"
            )
        payload = {"to": message.recipient, "text": message.text, "category": BIRD_CATEGORY}
        if config.sender is not None:
            payload["from"] = config.sender
        headers = {
            "Authorization": f"Bearer {key}",
            # The delivery id: a retry of this delivery is replayed by Bird, not sent again.
            IDEMPOTENCY_HEADER: message.id[:IDEMPOTENCY_KEY_MAX],
        }
        return HttpRequest.json(base_url + "/v1/sms/messages", payload, headers)

    def _raise_if_key_in_use(self, response: HttpResponse, body: dict[str, Any]) -> None:
        """A 409 about the ``Idempotency-Key``: Bird has this delivery already (no fallback).

        In flight: retryable, since a retry with the same key gets the first request's answer.
        Reused with another body: not retryable, as every retry would get the same 409.
        """
        error = _bird_error(body)
        marks = {str(error.get(name)) for name in ("code", "type") if error.get(name)}
        for codes, what in (
            (IDEMPOTENCY_IN_FLIGHT, "an earlier request of this delivery is in flight"),
            (IDEMPOTENCY_REUSED, "this delivery was already sent with another body"),
        ):
            found = marks & codes
            if found:
                code = min(found)
                raise ProviderError(
                    code,
                    f"Bird answered HTTP 409 ({code}): {what}",
                    retryable=code in BIRD_ERRORS.retryable,
                    handed_off=code in BIRD_ERRORS.handed_off,
                    status=409,
                )

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        body: dict[str, Any] = response.json() if response.body else {}
        if is_success(response.status):
            message_id = body["id"]
            if not isinstance(message_id, str) or not message_id:
                raise ValueError("no id")
            return Receipt(provider=self.name, message_id=message_id, status=_status(body))
        if response.status == 409:
            self._raise_if_key_in_use(response, body)
        if isinstance(body.get("error"), dict):  # Bird
            error = body["error"]
            kind = error.get("type")
            raise answered_error(
                response,
                kind,
                f"Bird answered HTTP {response.status}: "
                f"{kind or 'error'} {error.get('code') or ''}: "
                f"{error.get('message') or 'no details'}",
                table=BIRD_ERRORS,
            )
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):  # legacy
            first = errors[0]
            raise answered_error(
                response,
                first.get("code"),
                f"MessageBird answered HTTP {response.status}: "
                f"{first.get('description') or 'no details'}",
                table=LEGACY_ERRORS,
            )
        raise answered_error(response, None, f"MessageBird answered HTTP {response.status}")


def _bird_error(body: dict[str, Any]) -> dict[str, Any]:
    """Bird's error object: nested under ``error``, or the body itself (flat envelope)."""
    nested = body.get("error")
    return nested if isinstance(nested, dict) else body


def _status(body: dict[str, Any]) -> str | None:
    """Bird's ``status``, or the legacy first recipient's (``sent``, ``scheduled``…)."""
    status = body.get("status")
    if isinstance(status, str):
        return status
    recipients = body.get("recipients")
    items = recipients.get("items") if isinstance(recipients, dict) else None
    if isinstance(items, list) and items and isinstance(items[0], dict):
        item_status = items[0].get("status")
        return item_status if isinstance(item_status, str) else None
    return None


@hookimpl
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register the MessageBird / Bird provider; its session opens on first use."""
    register(MessageBirdProvider())
