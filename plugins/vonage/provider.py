"""The ``vonage`` provider: settings, credentials, and the dispatch to SMS or voice.

SMS and voice authenticate differently (an API key and secret in the SMS form; an application
JWT for calls), so each pair of credentials is optional and checked when a message needs it:
a send that cannot work as configured fails with ``configuration_error`` before any request.
"""

from __future__ import annotations

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from plugins.vonage.sms import read_sms_response, sms_request
from plugins.vonage.voice import load_private_key, read_voice_response, voice_request
from runtime.events import Channel
from runtime.http import HttpRequest, HttpResponse
from runtime.provider_kit import (
    AbsoluteUrl,
    BaseUrl,
    E164Number,
    HttpProvider,
    ProviderCredentials,
    ProviderSettings,
    SenderId,
    configuration_error,
)
from runtime.providers import PhoneMessage, Receipt
from runtime.receipts.urls import callback_url

__all__ = ["VonageConfig", "VonageCredentials", "VonageProvider"]


class VonageConfig(ProviderSettings):
    """A tenant's public Vonage settings."""

    sender: SenderId | None = Field(
        default=None,
        description=(
            "SMS sender (`from`): an alphanumeric id of up to 11 characters, or a number. "
            "Defaults to from_number."
        ),
    )
    from_number: E164Number | None = Field(
        default=None,
        description="The Vonage number (E.164) that calls come from; the SMS sender too when "
        "sender is not set. Required for voice.",
    )
    sms_base_url: BaseUrl = Field(
        default="https://rest.nexmo.com/sms",
        description="SMS API base, path included; requests go to `{sms_base_url}/json`.",
    )
    voice_base_url: BaseUrl = Field(
        default="https://api.nexmo.com/v1/calls",
        description="Voice API calls URL; calls are created by a POST to it.",
    )
    callback_url: AbsoluteUrl | None = Field(
        default=None,
        description="Webhook for SMS delivery receipts (`callback`), instead of the account's.",
    )
    event_url: AbsoluteUrl | None = Field(
        default=None,
        description="Webhook for call events (`event_url`), instead of the application's.",
    )

    @model_validator(mode="after")
    def _need_a_sender(self) -> VonageConfig:
        if self.sender is None and self.from_number is None:
            raise ValueError(
                "set sender (SMS) or from_number (a Vonage number in E.164; voice needs it)"
            )
        return self


class VonageCredentials(ProviderCredentials):
    """A tenant's Vonage secrets (write-only): the API key pair for SMS, the application and
    its private key for voice. Each pair is complete or absent; at least one is needed."""

    api_key: str | None = Field(
        default=None, min_length=1, description="Account API key (SMS `api_key`)."
    )
    api_secret: SecretStr | None = Field(
        default=None, min_length=1, description="Account API secret (SMS `api_secret`)."
    )
    application_id: str | None = Field(
        default=None, min_length=1, description="Voice application id (JWT `application_id`)."
    )
    private_key: SecretStr | None = Field(
        default=None,
        description="The voice application's RSA private key (PEM) that signs the JWT.",
    )
    signature_secret: SecretStr | None = Field(
        default=None,
        min_length=1,
        description="The account's signature secret (signed webhooks on): with it and "
        "public_base_url, SMS ask for delivery receipts, whose signature it checks.",
    )

    @field_validator("private_key")
    @classmethod
    def _check_private_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            load_private_key(value.get_secret_value())  # ValueError names no part of the key
        return value

    @model_validator(mode="after")
    def _complete_pairs(self) -> VonageCredentials:
        sms = (self.api_key is None, self.api_secret is None)
        voice = (self.application_id is None, self.private_key is None)
        if sms[0] != sms[1]:
            raise ValueError("api_key and api_secret go together (SMS)")
        if voice[0] != voice[1]:
            raise ValueError("application_id and private_key go together (voice)")
        if all(sms) and all(voice):
            raise ValueError(
                "set api_key and api_secret (SMS), or application_id and private_key (voice)"
            )
        return self


class VonageProvider(HttpProvider[VonageConfig, VonageCredentials]):
    """SMS through Vonage's SMS API, voice calls through its Voice API."""

    name = "vonage"
    label = "Vonage"
    channels = frozenset[Channel]({"sms", "voice"})
    config_model = VonageConfig
    credentials_model = VonageCredentials
    public_base_url: str | None = None  # set at registration: SMS ask for receipts here

    def build_request(
        self, message: PhoneMessage, config: VonageConfig, credentials: VonageCredentials
    ) -> HttpRequest:
        if message.channel == "voice":
            return self._voice(message, config, credentials)
        return self._sms(message, config, credentials)

    def _sms(
        self, message: PhoneMessage, config: VonageConfig, credentials: VonageCredentials
    ) -> HttpRequest:
        if credentials.api_key is None or credentials.api_secret is None:
            raise configuration_error("Vonage SMS needs the api_key and api_secret credentials")
        sender = config.sender or config.from_number
        if sender is None:  # the model already needs one of the two
            raise configuration_error("Vonage SMS needs sender or from_number")
        return sms_request(
            message,
            base_url=config.sms_base_url,
            api_key=credentials.api_key,
            api_secret=credentials.api_secret.get_secret_value(),
            sender=sender.removeprefix("+"),
            callback_url=config.callback_url or self._receipt_url(message, credentials),
        )

    def _receipt_url(self, message: PhoneMessage, credentials: VonageCredentials) -> str | None:
        """This service's receipt route, when its signature can be checked (runtime/receipts)."""
        if credentials.signature_secret is None:
            return None
        return callback_url(self.public_base_url, self.name, message.tenant, message.id) or None

    def _voice(
        self, message: PhoneMessage, config: VonageConfig, credentials: VonageCredentials
    ) -> HttpRequest:
        if credentials.application_id is None or credentials.private_key is None:
            raise configuration_error(
                "Vonage voice calls need the application_id and private_key credentials"
            )
        if config.from_number is None:
            raise configuration_error("Vonage voice calls need from_number (a Vonage number)")
        return voice_request(
            message,
            base_url=config.voice_base_url,
            application_id=credentials.application_id,
            private_key=credentials.private_key.get_secret_value(),
            from_number=config.from_number,
            event_url=config.event_url,
        )

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        if message.channel == "voice":
            return read_voice_response(response, self.name)
        return read_sms_response(response, self.name)
