"""Clickatell provider plugin: one-time codes by SMS through Clickatell's One API (no voice).

``POST {base_url}/v1/message`` with the integration's API key as the raw ``Authorization``
header (no scheme) and a JSON body ``{"messages": [{"channel": "sms", "to", "content",
"from"?}]}``; numbers go without ``+`` (Clickatell's One API reference).

Clickatell answers 202 with one entry per message: ``{"apiMessageId", "accepted": true,
"to"}``. A message it did not take has ``"accepted": false`` and an ``error`` object
``{"code", "description"}`` (HTTP 400, or 207 in a batch); a request it did not take at all
(a bad key, a malformed payload) has a top-level ``error`` object of the same shape and no
``messages``. The error code, not the HTTP status, says what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr

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
    digits_only,
    is_success,
    refused,
)
from runtime.providers import PhoneMessage, Receipt

if TYPE_CHECKING:
    from runtime.providers import Provider
    from runtime.settings import Settings

__all__ = [
    "ClickatellConfig",
    "ClickatellCredentials",
    "ClickatellProvider",
    "register_providers",
]

ERRORS = ErrorTable(
    # Clickatell did not take the message, and would not again.
    permanent={
        "1",  # invalid or missing integration API key
        "2",  # account is not active
        "3",  # integration is not active
        "7",  # originating IP address is not approved in the account
        "20",  # insufficient account balance
        "21",  # payload data is malformed
        "23",  # invalid or missing parameter
        "24",  # maximum message content size exceeded
        "25",  # invalid recipient address
        "26",  # recipient opted out
        "27",  # recipient not available on this channel
        "28",  # recipient not available on the sandbox
        "44",  # `from` number is suspended
        "45",  # `from` number is not related to the integration
        "100",  # maximum message parts exceeded
    },
    # "Internal error, please retry": handed off or not by the HTTP status it came with (a 5xx
    # other than 503 may come after Clickatell queued the message).
    retryable={"19"},
    # Rate limited: refused before Clickatell took the message, so a retry (or a fallback)
    # cannot send a second code.
    throttled={"43"},
    # Clickatell's codes are its own answer: a permanent one means not taken, whatever status.
    final=True,
)


class ClickatellConfig(ProviderSettings):
    """A tenant's public Clickatell settings."""

    sender: str | None = Field(
        default=None,
        pattern=r"^\+?[A-Za-z0-9]{1,15}$",
        description=(
            "Sender (`from`): one of the integration's numbers in international format "
            "(a leading `+` is dropped), or an alphanumeric sender ID where the destination "
            "allows one. Unset: Clickatell picks the integration's default."
        ),
    )
    base_url: BaseUrl = Field(
        default="https://platform.clickatell.com",
        description="Clickatell One API origin (tests: a local stub).",
    )


class ClickatellCredentials(ProviderCredentials):
    """A tenant's Clickatell secret (write-only)."""

    api_key: SecretStr = Field(
        min_length=1,
        description="The One API integration's API key, sent as the raw `Authorization` header.",
    )


class ClickatellProvider(HttpProvider[ClickatellConfig, ClickatellCredentials]):
    """SMS through Clickatell's One API."""

    name = "clickatell"
    label = "Clickatell"
    channels = frozenset[Channel]({"sms"})
    config_model = ClickatellConfig
    credentials_model = ClickatellCredentials

    def build_request(
        self, message: PhoneMessage, config: ClickatellConfig, credentials: ClickatellCredentials
    ) -> HttpRequest:
        sms: dict[str, str] = {
            "channel": "sms",
            "to": digits_only(message.recipient),
            "content": message.text,
        }
        if config.sender is not None:
            sms["from"] = digits_only(config.sender)
        return HttpRequest.json(
            config.base_url + "/v1/message",
            {"messages": [sms]},
            {"Authorization": credentials.api_key.get_secret_value()},
        )

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        body: Mapping[str, Any] = response.json() if response.body else {}
        if not isinstance(body, Mapping):
            raise TypeError("the answer is not a JSON object")
        success = is_success(response.status)
        if body.get("error"):  # request-level: no message was processed
            raise self._error(response, body["error"])
        messages = body.get("messages") or []
        if success and not messages:
            raise KeyError("messages")  # a 2xx that does not say what happened: unreadable
        entry: Mapping[str, Any] = messages[0] if messages else {}
        if entry.get("error"):
            raise self._error(response, entry["error"])
        if success and entry.get("accepted") is True:
            message_id = entry["apiMessageId"]
            if not isinstance(message_id, str) or not message_id:
                raise ValueError("apiMessageId")
            return Receipt(provider=self.name, message_id=message_id)
        if success:
            raise refused(
                response.status,
                "Clickatell did not accept the message (no error given)",
                retryable=False,
                status=response.status,
            )
        raise answered_error(response, None, f"Clickatell answered HTTP {response.status}")

    def _error(self, response: HttpResponse, error: Mapping[str, Any]) -> ProviderError:
        """The :class:`ProviderError` for one of Clickatell's ``{code, description}`` objects."""
        code = str(error["code"])
        description = str(error.get("description") or "no description")
        if ERRORS.says_refused(code):
            text = f"Clickatell refused the message (error {code}: {description})"
        else:
            text = f"Clickatell answered HTTP {response.status} (error {code}: {description})"
        return answered_error(response, code, text, table=ERRORS)


@hookimpl
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register the Clickatell provider; its session opens on first use."""
    register(ClickatellProvider())
