"""Sinch provider plugin: one-time codes by SMS (the XMS REST API) and by voice (a TTS callout).

One provider, ``sinch``, carries both channels through two Sinch APIs:

- **SMS**: ``POST {sms_base_url}/xms/v1/{service_plan_id}/batches`` with
  ``Authorization: Bearer <api_token>`` and a JSON batch ``{from, to: [E.164], body}``. Sinch
  answers 201 with the batch; its ``id`` is the message id. Errors carry
  ``{"code": "syntax_invalid_parameter_format", "text": ...}``.
- **Voice**: ``POST {voice_base_url}/calling/v1/callouts`` with Basic auth
  ``application_key:application_secret`` and ``{"method": "ttsCallout", "ttsCallout": {cli,
  destination, locale, text}}``. Sinch answers 200 ``{"callId"}`` (the OpenAPI spec spells it
  ``callid``: both are read). Errors carry ``{"errorCode": 40003, "message": ...}``, flat as
  the live API sends them or nested under ``response.error`` as the spec's examples show.

Numbers stay E.164 with the ``+``, as both APIs want. The error code a failure reports is
Sinch's own (``syntax_invalid_json``, ``40200``) when the answer has one, else the HTTP status;
it is classified by status (4xx other than 408/429: permanent; 429 and 5xx: retryable; a 5xx
other than 503: handed off) and by the code tables below.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr

from runtime import hookimpl
from runtime.events import Channel
from runtime.http import HttpRequest, HttpResponse
from runtime.locales import LanguageTable
from runtime.provider_kit import (
    AbsoluteUrl,
    BaseUrl,
    E164Number,
    ErrorTable,
    HttpProvider,
    ProviderCredentials,
    ProviderSettings,
    answered_error,
    configuration_error,
    is_success,
)
from runtime.providers import PhoneMessage, Receipt
from runtime.receipts.tokens import TokenCallbacks, token_callbacks

if TYPE_CHECKING:
    from runtime.providers import Provider
    from runtime.settings import Settings

__all__ = [
    "SMS_ERRORS",
    "SMS_REGIONS",
    "TTS_LOCALES",
    "VOICE_ERRORS",
    "SinchConfig",
    "SinchCredentials",
    "SinchProvider",
    "register_providers",
    "tts_locale",
]

SmsRegion = Literal["us", "eu", "au", "br", "ca"]
SMS_REGIONS: tuple[SmsRegion, ...] = ("us", "eu", "au", "br", "ca")

# XMS codes that no retry fixes: the request itself is wrong (400) or not allowed (403). They are
# permanent even if Sinch, or a proxy, ever sent them with a 429 or a 5xx.
SMS_ERRORS = ErrorTable(
    permanent={
        "syntax_invalid_json",  # 400: the body is not JSON
        "syntax_invalid_parameter_format",  # 400: e.g. a `to` that is not an MSISDN
        "syntax_constraint_violation",  # 400: e.g. a body over 1600 characters
        "missing_callback_url",  # 403: a delivery report asked for without a callback URL
    }
)

# Calling API error codes that no retry fixes (the spec's examples for the callout, plus 40100).
VOICE_ERRORS = ErrorTable(
    permanent={
        "40003",  # 400: invalid request
        "40100",  # 401: authorization required (wrong application key or secret)
        "40200",  # 402: payment required, the account has no credit left
    }
)

# The ttsCallout's locales, as Sinch's SDK lists them (sinch/sinch-sdk-node,
# packages/voice/src/models/v1/enums.ts at affb35e, `TtsVoice`: the language codes, without
# the `/female`, `/male` and voice-name forms). Sinch spells Arabic `arb`, Mandarin `cmn-CN`,
# Cantonese `zh-HK`. A locale Sinch does not list falls back to en-US.
TTS_LOCALES = LanguageTable(
    (
        "arb", "az-AZ", "ca-ES", "zh-HK", "cmn-CN", "hr-HR", "cs-CZ", "da-DK", "nl-NL",
        "en-AU", "en-GB", "en-IN", "en-NZ", "en-ZA", "en-US", "en-GB-WLS", "et-EE", "fil-PH",
        "fi-FI", "fr-FR", "fr-CA", "ka-GE", "de-DE", "de-AT", "el-GR", "hi-IN", "hu-HU",
        "is-IS", "id-ID", "it-IT", "ja-JP", "ko-KR", "mt-MT", "ms-MY", "nb-NO", "lv-LV",
        "lt-LT", "pl-PL", "pt-BR", "pt-PT", "ro-RO", "ru-RU", "es-ES", "es-MX", "es-US",
        "sk-SK", "sl-SI", "sv-SE", "th-TH", "tr-TR", "uk-UA", "uz-UZ", "vi-VN", "cy-GB",
    ),
    default="en-US",
    # Chinese by script or region: Mandarin is cmn-CN (Sinch has no cmn-TW), Cantonese zh-HK.
    aliases={
        "zh": "cmn-CN", "zh-CN": "cmn-CN", "zh-SG": "cmn-CN", "zh-TW": "cmn-CN",
        "zh-MO": "zh-HK", "yue": "zh-HK",
    },
)  # fmt: skip


def tts_locale(locale: str | None) -> str:
    """The ttsCallout's ``locale`` for ``locale``: a code Sinch lists (``ar`` -> ``arb``,
    ``zh-Hans`` -> ``cmn-CN``, ``es-AR`` -> ``es-ES``), else ``en-US``."""
    return TTS_LOCALES.pick(locale)


# The Calling API's default limit on a TTS text (per application; Sinch support can raise it).
TTS_MAX_CHARS = 600


def _check_callback_url(value: str) -> str:
    if len(value) > 2048:
        raise ValueError("must be at most 2048 characters (Sinch's limit)")
    return value


CallbackUrl = Annotated[AbsoluteUrl, AfterValidator(_check_callback_url)]
"""An absolute http(s) URL kept as written (a query is allowed), at most 2048 characters."""


class SinchConfig(ProviderSettings):
    """A tenant's public Sinch settings.

    SMS needs ``service_plan_id``; voice needs ``from_number``. A tenant that uses one channel
    only may leave the other's settings out: a send on a channel that lacks them fails with
    ``configuration_error`` before any request.
    """

    service_plan_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="The SMS service plan ID (in the XMS URL path). Required for SMS.",
    )
    sender: str | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description=(
            "SMS `from`: a number, short code or alphanumeric sender ID. Defaults to "
            "`from_number`; when both are unset Sinch uses the service plan's default originator."
        ),
    )
    from_number: E164Number | None = Field(
        default=None,
        description="The caller number of voice calls (`cli`), E.164. Required for voice.",
    )
    region: SmsRegion = Field(
        default="us",
        description="The XMS region; picks the default `sms_base_url` "
        "(`https://{region}.sms.api.sinch.com`).",
    )
    sms_base_url: BaseUrl | None = Field(
        default=None,
        description="XMS API origin; overrides `region` (tests: a local stub).",
    )
    voice_base_url: BaseUrl = Field(
        default="https://calling.api.sinch.com",
        description="Calling API origin (Sinch redirects to a regional host; tests: a stub).",
    )
    callback_url: CallbackUrl | None = Field(
        default=None,
        description="SMS: the batch's `callback_url` for delivery reports.",
    )
    delivery_report: Literal["none", "summary", "full", "per_recipient"] | None = Field(
        default=None,
        description="SMS: the batch's `delivery_report` kind; unset lets the plan decide.",
    )
    voice_repeats: int = Field(
        default=2,
        ge=1,
        le=3,
        description="How many times a call says the text (fewer when it would pass 600 chars).",
    )

    def sms_origin(self) -> str:
        """``sms_base_url``, or the region's XMS host."""
        return self.sms_base_url or f"https://{self.region}.sms.api.sinch.com"


class SinchCredentials(ProviderCredentials):
    """A tenant's Sinch secrets (write-only): the SMS token and/or the voice application pair."""

    api_token: SecretStr | None = Field(
        default=None, min_length=1, description="XMS API token (`Bearer`). Required for SMS."
    )
    application_key: SecretStr | None = Field(
        default=None,
        min_length=1,
        description="Voice application key (Basic auth user). Required for voice.",
    )
    application_secret: SecretStr | None = Field(
        default=None,
        min_length=1,
        description="Voice application secret (Basic auth password). Required for voice.",
    )


class SinchProvider(HttpProvider[SinchConfig, SinchCredentials]):
    """SMS and voice through Sinch (see the module docstring)."""

    name = "sinch"
    label = "Sinch"
    channels = frozenset[Channel]({"sms", "voice"})
    config_model = SinchConfig
    credentials_model = SinchCredentials
    receipts: TokenCallbacks | None = None  # set at registration when public_base_url is set

    def build_request(
        self, message: PhoneMessage, config: SinchConfig, credentials: SinchCredentials
    ) -> HttpRequest:
        if message.channel == "voice":
            return self._voice_request(message, config, credentials)
        return self._sms_request(message, config, credentials)

    def _sms_request(
        self, message: PhoneMessage, config: SinchConfig, credentials: SinchCredentials
    ) -> HttpRequest:
        if config.service_plan_id is None:
            raise configuration_error("Sinch SMS needs the service_plan_id setting")
        if credentials.api_token is None:
            raise configuration_error("Sinch SMS needs the api_token credential")
        batch: dict[str, Any] = {
            "to": [message.recipient],
            "body": message.text,
            # Echoed in delivery reports: ties a report to this delivery (max 128 characters).
            "client_reference": message.id[:128],
        }
        sender = config.sender or config.from_number
        if sender is not None:
            batch["from"] = sender
        if config.callback_url is not None:
            batch["callback_url"] = config.callback_url
        elif self.receipts is not None:  # this service's receipt route (runtime/receipts)
            batch["callback_url"] = self.receipts.url(self.name, message.tenant, message.id)
            batch["delivery_report"] = "per_recipient"
        if config.delivery_report is not None:
            batch["delivery_report"] = config.delivery_report
        return HttpRequest.json(
            f"{config.sms_origin()}/xms/v1/{config.service_plan_id}/batches",
            batch,
            {"Authorization": f"Bearer {credentials.api_token.get_secret_value()}"},
        )

    def _voice_request(
        self, message: PhoneMessage, config: SinchConfig, credentials: SinchCredentials
    ) -> HttpRequest:
        if config.from_number is None:
            raise configuration_error("Sinch voice needs the from_number setting (the caller)")
        key, secret = credentials.application_key, credentials.application_secret
        if key is None or secret is None:
            raise configuration_error(
                "Sinch voice needs the application_key and application_secret credentials"
            )
        pair = f"{key.get_secret_value()}:{secret.get_secret_value()}".encode()
        return HttpRequest.json(
            f"{config.voice_base_url}/calling/v1/callouts",
            {
                "method": "ttsCallout",
                "ttsCallout": {
                    "cli": config.from_number,
                    "destination": {"type": "number", "endpoint": message.recipient},
                    "locale": tts_locale(message.locale),
                    "text": spoken_text(message.text, config.voice_repeats),
                },
            },
            {"Authorization": f"Basic {base64.b64encode(pair).decode('ascii')}"},
        )

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        if message.channel == "voice":
            return self._read_voice(response)
        return self._read_sms(response)

    def _read_sms(self, response: HttpResponse) -> Receipt:
        if is_success(response.status):
            batch = _json_object(response.json())
            return Receipt(provider=self.name, message_id=_identifier(batch["id"]))
        body = _error_body(response)
        code = body.get("code")
        text = body.get("text") or "no details"
        raise answered_error(
            response,
            code if isinstance(code, str) and code else None,
            f"Sinch SMS answered HTTP {response.status}: {text}",
            table=SMS_ERRORS,
        )

    def _read_voice(self, response: HttpResponse) -> Receipt:
        if is_success(response.status):
            body = _json_object(response.json())
            call_id = body["callId"] if "callId" in body else body["callid"]
            return Receipt(provider=self.name, message_id=_identifier(call_id))
        body = _error_body(response)
        error = body
        nested = body.get("response")
        if isinstance(nested, Mapping) and isinstance(nested.get("error"), Mapping):
            error = nested["error"]  # the spec's examples: {"response": {"error": {...}}}
        code = error.get("errorCode", error.get("code"))
        text = error.get("message") or "no details"
        raise answered_error(
            response,
            str(code) if isinstance(code, int | str) and str(code) else None,
            f"Sinch voice answered HTTP {response.status}: {text}",
            table=VOICE_ERRORS,
        )


def spoken_text(text: str, repeats: int) -> str:
    """``text`` said ``repeats`` times in one TTS string (the ttsCallout has no loop field),
    fewer times when the whole would pass Sinch's default 600-character limit; at least once."""
    while repeats > 1 and repeats * (len(text) + 1) - 1 > TTS_MAX_CHARS:
        repeats -= 1
    return " ".join([text] * repeats)


def _json_object(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object; ``TypeError`` (-> ``malformed_response``) otherwise."""
    if not isinstance(value, Mapping):
        raise TypeError("not a JSON object")
    return value


def _identifier(value: Any) -> str:
    """A non-empty string id; ``TypeError``/``ValueError`` (-> ``malformed_response``) else."""
    if not isinstance(value, str):
        raise TypeError("id is not a string")
    if not value:
        raise ValueError("empty id")
    return value


def _error_body(response: HttpResponse) -> Mapping[str, Any]:
    """An error answer's JSON object, or ``{}`` for an empty, HTML or non-object body (a
    gateway's page): the HTTP status alone then classifies it."""
    try:
        body = response.json() if response.body else {}
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}


@hookimpl
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register the Sinch provider; its session opens on first use."""
    provider = SinchProvider()
    provider.receipts = token_callbacks(settings)  # runtime/receipts
    register(provider)
