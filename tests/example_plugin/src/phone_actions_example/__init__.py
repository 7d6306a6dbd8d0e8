"""ExampleTel: a provider plugin as a platform team would write one.

ExampleTel's (fictional) API: ``POST {base_url}/v1/sms`` with a bearer token and the JSON body
``{"to": "+447911123456", "from": "Acme", "text": "..."}``; it answers 202 ``{"id": "..."}``,
or an error ``{"error": {"code": "...", "message": "..."}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field, SecretStr

from runtime import hookimpl
from runtime.http import HttpRequest, HttpResponse
from runtime.provider_kit import (
    BaseUrl,
    ErrorTable,
    HttpProvider,
    ProviderCredentials,
    ProviderSettings,
    SenderId,
    answered_error,
    is_success,
)
from runtime.providers import PhoneMessage, Provider, Receipt

# ExampleTel's error codes, as data: answered_error reads them.
ERRORS = ErrorTable(
    permanent={"invalid_number", "blocked", "bad_token"},  # no retry fixes these
    throttled={"slow_down"},  # refused before sending: retryable, never handed off
)


class ExampleConfig(ProviderSettings):
    """Public settings (``provider_settings``)."""

    sender: SenderId = Field(description="Sender id shown to the recipient.")
    base_url: BaseUrl = Field(default="https://api.exampletel.test", description="API origin.")


class ExampleCredentials(ProviderCredentials):
    """Secrets (``credentials_env``)."""

    token: SecretStr = Field(min_length=8, description="Bearer token.")


class ExampleTelProvider(HttpProvider[ExampleConfig, ExampleCredentials]):
    """SMS through ExampleTel."""

    name = "exampletel"
    label = "ExampleTel"
    channels = frozenset({"sms"})
    config_model = ExampleConfig
    credentials_model = ExampleCredentials

    def build_request(
        self, message: PhoneMessage, config: ExampleConfig, credentials: ExampleCredentials
    ) -> HttpRequest:
        return HttpRequest.json(
            f"{config.base_url}/v1/sms",
            {"to": message.recipient, "from": config.sender, "text": message.text},
            {"Authorization": f"Bearer {credentials.token.get_secret_value()}"},
        )

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        if is_success(response.status):
            return Receipt(provider=self.name, message_id=str(response.json()["id"]))
        error: dict[str, Any] = response.json().get("error", {})
        return_code = error.get("code")
        raise answered_error(
            response,
            return_code,
            f"ExampleTel answered HTTP {response.status}: {error.get('message', 'no details')}",
            table=ERRORS,
        )


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register ExampleTel (a hook implementation may take fewer arguments than the spec)."""
    register(ExampleTelProvider())
