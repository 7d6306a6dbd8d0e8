"""Infobip provider plugin: one-time codes by SMS (SMS API v3) and by voice (advanced TTS).

Every Infobip account has its own API origin (``https://{id}.api.infobip.com``, shown in the
portal), so ``base_url`` has no default. Requests carry ``Authorization: App <api_key>`` and a
JSON body; numbers go without ``+`` (Infobip's API reference).

- SMS: ``POST /sms/3/messages`` with one message ``{sender, destinations: [{to}],
  content: {text}}``.
- Voice: ``POST /tts/3/advanced`` with one message ``{from, destinations: [{to}], text,
  language}`` and, when configured, ``voice``, ``speechRate`` and ``repeatDtmf`` (fields of
  Infobip's ``CallsAdvancedMessage`` model in its generated client libraries).

Both answer 200 with ``messages[0].messageId`` and a ``status`` whose group says what became
of the message. PENDING (1) and DELIVERED (3) mean Infobip took it; UNDELIVERABLE (2),
EXPIRED (4) and REJECTED (5) in that first answer mean it will not be sent, so the message is
refused (not handed off: the pipeline may fall back). Error answers come in two shapes, the new
``{"errorCode", "description", ...}`` and the legacy
``{"requestError": {"serviceException": {"messageId", "text"}}}``; the code reported is
``errorCode`` or ``messageId``, and the HTTP status classifies it (401 and 400 permanent, 429
retryable: the :data:`ERRORS` table read by :func:`runtime.provider_kit.answered_error`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, model_validator

from runtime import hookimpl
from runtime.events import Channel
from runtime.http import HttpRequest, HttpResponse
from runtime.locales import language
from runtime.provider_kit import (
    BaseUrl,
    E164Number,
    ErrorTable,
    HttpProvider,
    ProviderCredentials,
    ProviderSettings,
    answered_error,
    configuration_error,
    digits_only,
    is_success,
    refused,
)
from runtime.providers import PhoneMessage, Receipt
from runtime.receipts.tokens import TokenCallbacks, token_callbacks

if TYPE_CHECKING:
    from runtime.providers import Provider
    from runtime.settings import Settings

__all__ = [
    "InfobipConfig",
    "InfobipCredentials",
    "InfobipProvider",
    "register_providers",
]

SMS_PATH = "/sms/3/messages"
VOICE_PATH = "/tts/3/advanced"

# Status groups of a message in Infobip's first answer (from memory): these three
# mean Infobip will not send it. PENDING (1) and DELIVERED (3) mean it took the message.
REFUSED_GROUPS: dict[int, str] = {2: "UNDELIVERABLE", 4: "EXPIRED", 5: "REJECTED"}

ERRORS = ErrorTable(
    # No retry fixes these, whatever the HTTP status: a bad key or a bad request.
    permanent={"UNAUTHORIZED", "BAD_REQUEST", "E400", "E401"},
    # "Later": the rate limit, named in either error model.
    retryable={"TOO_MANY_REQUESTS", "E429"},
)


class InfobipConfig(ProviderSettings):
    """A tenant's public Infobip settings."""

    base_url: BaseUrl = Field(
        description="The account's API origin from the Infobip portal "
        "(`https://xxxxx.api.infobip.com`); no default, every account has its own."
    )
    sender: str | None = Field(
        default=None,
        min_length=1,
        max_length=15,
        description="SMS sender: an alphanumeric sender id or a number. Required for SMS.",
    )
    from_number: E164Number | None = Field(
        default=None,
        description="Caller number for voice calls, in E.164 (`+41793026700`; sent without "
        "`+`). Required for voice.",
    )
    voice_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Infobip TTS voice name (`Joanna`); default: Infobip's voice for the language.",
    )
    voice_gender: Literal["female", "male"] | None = Field(
        default=None,
        description="TTS voice gender; with no `voice_name`, Infobip uses its first voice of it.",
    )
    speech_rate: float | None = Field(
        default=None,
        ge=0.5,
        le=2.0,
        description="Speech rate of voice calls, 0.5 (slow) to 2 (fast); Infobip's default is 1.",
    )
    repeat_dtmf: str | None = Field(
        default=None,
        pattern=r"^[0-9*#]{1,8}$",
        description="Keys (`1` or `1#`) the callee presses to hear the message again.",
    )

    @model_validator(mode="after")
    def _sends_something(self) -> InfobipConfig:
        if self.sender is None and self.from_number is None:
            raise ValueError("set `sender` (SMS), `from_number` (voice) or both")
        return self


class InfobipCredentials(ProviderCredentials):
    """A tenant's Infobip secret (write-only)."""

    api_key: SecretStr = Field(min_length=1, description="Sent as `Authorization: App <api_key>`.")


class InfobipProvider(HttpProvider[InfobipConfig, InfobipCredentials]):
    """SMS and voice through Infobip."""

    name = "infobip"
    label = "Infobip"
    channels = frozenset[Channel]({"sms", "voice"})
    config_model = InfobipConfig
    credentials_model = InfobipCredentials
    receipts: TokenCallbacks | None = None  # set at registration when public_base_url is set

    def build_request(
        self, message: PhoneMessage, config: InfobipConfig, credentials: InfobipCredentials
    ) -> HttpRequest:
        headers = {"Authorization": f"App {credentials.api_key.get_secret_value()}"}
        to = digits_only(message.recipient)
        receipt = self.receipts.url(self.name, message.tenant, message.id) if self.receipts else ""
        if message.channel == "voice":
            call = _voice(message, config, to)
            if receipt:  # the call's delivery report (runtime/receipts)
                call["notifyUrl"], call["notifyContentType"] = receipt, "application/json"
            return HttpRequest.json(config.base_url + VOICE_PATH, {"messages": [call]}, headers)
        if config.sender is None:
            raise configuration_error("Infobip SMS need `sender` in the provider settings")
        sms = {
            "sender": config.sender,
            "destinations": [{"to": to}],
            "content": {"text": message.text},
        }
        if receipt:  # the message's delivery report (runtime/receipts)
            sms["webhooks"] = {"delivery": {"url": receipt}, "contentType": "application/json"}
        return HttpRequest.json(config.base_url + SMS_PATH, {"messages": [sms]}, headers)

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        body: Any = response.json() if response.body else {}
        if is_success(response.status):
            sent = body["messages"][0]  # a 2xx without it is unreadable
            message_id = str(sent["messageId"])
            status = sent.get("status") or {}
            group = _group(status)
            if group in REFUSED_GROUPS.values():
                code = str(status.get("name") or group)
                detail = status.get("description") or "no details"
                raise refused(
                    code,
                    f"Infobip refused the message ({group} {code}: {detail})",
                    retryable=False,  # the status group says it: never sent
                    status=response.status,
                )
            return Receipt(provider=self.name, message_id=message_id, status=group)
        error_code, text = _error(body)
        raise answered_error(
            response,
            error_code,
            f"Infobip answered HTTP {response.status}: {text}",
            table=ERRORS,
        )


def _voice(message: PhoneMessage, config: InfobipConfig, to: str) -> dict[str, Any]:
    """One advanced TTS message: the spelled script, in the language of the locale."""
    if config.from_number is None:
        raise configuration_error("Infobip voice calls need `from_number` in the provider settings")
    call: dict[str, Any] = {
        "from": digits_only(config.from_number),
        "destinations": [{"to": to}],
        "text": message.text,
        "language": language(message.locale),
    }
    voice = {
        key: value
        for key, value in (("name", config.voice_name), ("gender", config.voice_gender))
        if value is not None
    }
    if voice:
        call["voice"] = voice
    if config.speech_rate is not None:
        call["speechRate"] = config.speech_rate
    if config.repeat_dtmf is not None:
        call["repeatDtmf"] = config.repeat_dtmf
    return call


def _group(status: dict[str, Any]) -> str | None:
    """The status group's name, from ``groupId`` (or ``groupName`` when the id is missing)."""
    group_id = status.get("groupId")
    if isinstance(group_id, int) and group_id in REFUSED_GROUPS:
        return REFUSED_GROUPS[group_id]
    name = status.get("groupName")
    return str(name) if name is not None else None


def _error(body: Any) -> tuple[str | None, str]:
    """The code and text of an error answer in either of Infobip's two models."""
    if not isinstance(body, dict):
        return None, "no details"
    if body.get("errorCode") is not None:
        return str(body["errorCode"]), str(body.get("description") or "no details")
    request_error = body.get("requestError")
    exception = request_error.get("serviceException") if isinstance(request_error, dict) else None
    if isinstance(exception, dict):
        code = exception.get("messageId")
        return (str(code) if code is not None else None), str(exception.get("text") or "no details")
    return None, "no details"


@hookimpl
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register the Infobip provider; its session opens on first use."""
    provider = InfobipProvider()
    provider.receipts = token_callbacks(settings)  # runtime/receipts
    register(provider)
