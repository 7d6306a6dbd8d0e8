"""ExampleTel: a provider plugin as a platform team would write one.

ExampleTel's (fictional) API: ``POST {base_url}/v1/sms`` with a bearer token and the JSON body
``{"to": "+447911123456", "from": "Acme", "text": "..."}``; it answers 202 ``{"id": "..."}``,
or an error ``{"error": {"code": "...", "message": "..."}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from runtime import hookimpl
from runtime.http import HttpRequest, HttpResponse
from runtime.http_provider import BaseUrl, HttpProvider, answered_error
from runtime.providers import PhoneMessage, Provider, Receipt

# ExampleTel's codes that no retry fixes.
PERMANENT = frozenset({"invalid_number", "blocked", "bad_token"})


class ExampleConfig(BaseModel):
    """Public settings (``provider_settings``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sender: str = Field(min_length=1, description="Sender id shown to the recipient.")
    base_url: BaseUrl = Field(default="https://api.exampletel.test", description="API origin.")


class ExampleCredentials(BaseModel):
    """Secrets (``credentials_env``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: SecretStr = Field(min_length=8, description="Bearer token.")


class ExampleTelProvider(HttpProvider):
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
        if response.status == 202:
            return Receipt(provider=self.name, message_id=str(response.json()["id"]))
        error: dict[str, Any] = response.json().get("error", {})
        return_code = error.get("code")
        raise answered_error(
            response,
            return_code,
            f"ExampleTel answered HTTP {response.status}: {error.get('message', 'no details')}",
            permanent_codes=PERMANENT,
        )


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register ExampleTel (a hook implementation may take fewer arguments than the spec)."""
    register(ExampleTelProvider())
