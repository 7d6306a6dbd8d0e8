"""Mitto provider plugin: one-time codes by SMS through Mitto's REST API (no voice).

``POST {base_url}{path}`` (by default ``https://rest.mittoapi.net/sms``, as Mitto's SMS API
reference gives it) with a JSON body ``{from, to, text}`` (and ``type: Unicode`` for a text
outside the GSM alphabet, which Mitto encodes by default) and the ``X-Mitto-API-Key`` header.
Mitto answers 200 with ``responseCode`` 0 on success and another code otherwise (Mitto's
SMS API reference); numbers go without ``+``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr

from runtime import hookimpl
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
    is_gsm7,
    refused,
)
from runtime.providers import PhoneMessage, Receipt

if TYPE_CHECKING:
    from runtime.providers import Provider
    from runtime.settings import Settings

__all__ = ["MittoConfig", "MittoCredentials", "MittoProvider", "register_providers"]

# Mitto's responseCode table (its SMS API status codes): 0 sent, then the errors.
ERRORS = ErrorTable(
    retryable={"1"},  # internal error: worth another try
    # invalid type, empty message, invalid text, empty sender, invalid sender, empty receiver,
    # invalid receiver: the request itself, which no retry fixes.
    permanent={"2", "3", "4", "5", "6", "7", "8"},
    # A code outside the table is our call (Mitto's table gives no retry advice): nothing was
    # sent (a responseCode other than 0), so another try cannot send a second code.
    unknown_retryable=True,
)

# Mitto's SMS API reference: POST https://<base endpoint>/sms, with https://rest.mittoapi.net as
# the recommended (geo-resolved) base endpoint; its OpenAPI spec has the same server and path.
DEFAULT_BASE_URL = "https://rest.mittoapi.net"
DEFAULT_PATH = "/sms"


class MittoConfig(ProviderSettings):
    """A tenant's public Mitto settings."""

    sender: str = Field(min_length=1, max_length=15, description="Sender id or number (`from`).")
    base_url: BaseUrl = Field(
        default=DEFAULT_BASE_URL,
        description="Mitto API origin: the geo-resolved endpoint, or a regional one such as "
        "`https://rest-fra.mittoapi.net` (tests: a local stub).",
    )
    path: str = Field(
        default=DEFAULT_PATH,
        pattern=r"^/[A-Za-z0-9._/-]*$",
        description="Send path: `/sms` in Mitto's SMS API reference and OpenAPI spec.",
    )


class MittoCredentials(ProviderCredentials):
    """A tenant's Mitto secret (write-only)."""

    api_key: SecretStr = Field(min_length=1, description="Sent as `X-Mitto-API-Key`.")


class MittoProvider(HttpProvider[MittoConfig, MittoCredentials]):
    """SMS through Mitto."""

    name = "mitto"
    label = "Mitto"
    channels = frozenset[Channel]({"sms"})
    config_model = MittoConfig
    credentials_model = MittoCredentials

    def build_request(
        self, message: PhoneMessage, config: MittoConfig, credentials: MittoCredentials
    ) -> HttpRequest:
        body = {"from": config.sender, "to": digits_only(message.recipient), "text": message.text}
        if not is_gsm7(message.text):  # Mitto encodes GSM unless told: "set type Unicode"
            body["type"] = "Unicode"
        return HttpRequest.json(
            config.base_url + config.path,
            body,
            {"X-Mitto-API-Key": credentials.api_key.get_secret_value()},
        )

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        body: dict[str, Any] = response.json() if response.body else {}
        text = str(body.get("responseText") or "no details")
        if response.status == 200:
            code = str(body["responseCode"])  # a 200 without it is unreadable
            if code == "0":
                return Receipt(provider=self.name, message_id=str(body["id"]))
            raise refused(
                code,
                f"Mitto refused the message (responseCode {code}: {text})",
                status=200,
                table=ERRORS,
            )
        raise answered_error(
            response,
            body.get("responseCode"),
            f"Mitto answered HTTP {response.status}: {text}",
            table=ERRORS,
        )


@hookimpl
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register the Mitto provider; its session opens on first use."""
    register(MittoProvider())
