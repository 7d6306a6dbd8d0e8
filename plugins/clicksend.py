"""ClickSend provider plugin: one-time codes by SMS and by text-to-speech voice call.

ClickSend's REST API v3 (developers.clicksend.com), HTTP Basic with the
API user name and API key, JSON both ways, numbers in E.164. ClickSend's docs say voice is
closed to new accounts: the channel stays for the accounts that have it.

- SMS: ``POST {base_url}/sms/send`` with
  ``{"messages": [{"source", "body", "to", "from"?, "custom_string"}]}``;
- voice: ``POST {base_url}/voice/send`` with
  ``{"messages": [{"source", "body", "to", "voice", "lang", "custom_string",
  "require_input": 0, "machine_detection": 0}]}``.

ClickSend answers 200 ``{"http_code": 200, "response_code": "SUCCESS", "data": {"messages":
[{"message_id", "status", ...}]}}``. The request can succeed while the one message in it is
refused: each message has its own ``status`` (``SUCCESS``, or an application status code such
as ``INVALID_RECIPIENT`` or ``INSUFFICIENT_CREDIT``), and anything but ``SUCCESS`` means
ClickSend did not queue it. Request-level failures carry an HTTP status and a
``response_code`` named after it (``BAD_REQUEST``, ``UNAUTHORIZED``, ``TOO_MANY_REQUESTS``,
``INTERNAL_SERVER_ERROR``, ...).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator

from runtime import hookimpl
from runtime.events import Channel
from runtime.http import HttpRequest, HttpResponse
from runtime.locales import MAIN_REGION, language, language_region
from runtime.provider_kit import (
    BaseUrl,
    ErrorTable,
    HttpProvider,
    ProviderCredentials,
    ProviderSettings,
    answered_error,
    is_success,
    refused,
)
from runtime.providers import PhoneMessage, Receipt

if TYPE_CHECKING:
    from runtime.providers import Provider
    from runtime.settings import Settings

__all__ = [
    "ERRORS",
    "LANGUAGES",
    "ClickSendConfig",
    "ClickSendCredentials",
    "ClickSendProvider",
    "clicksend_language",
    "register_providers",
]

SOURCE = "phone-actions"  # ClickSend's "your method of sending"
SUCCESS = "SUCCESS"

Voice = Literal["female", "male"]

# ClickSend's text-to-speech languages ("Allowed Languages", voice messaging docs), with the
# voices each one has: a voice the language lacks would make ClickSend refuse the call.
LANGUAGES: dict[str, frozenset[Voice]] = {
    "en-us": frozenset({"female", "male"}),
    "en-au": frozenset({"female", "male"}),
    "en-gb": frozenset({"female", "male"}),
    "en-in": frozenset({"female"}),
    "en-gb-wls": frozenset({"female", "male"}),
    "cy-gb-wls": frozenset({"female", "male"}),
    "de-de": frozenset({"female", "male"}),
    "es-es": frozenset({"female", "male"}),
    "es-us": frozenset({"female", "male"}),
    "fr-ca": frozenset({"female"}),
    "fr-fr": frozenset({"female", "male"}),
    "is-is": frozenset({"female", "male"}),
    "it-it": frozenset({"female", "male"}),
    "da-dk": frozenset({"female", "male"}),
    "nl-nl": frozenset({"female", "male"}),
    "nb-no": frozenset({"female"}),
    "pl-pl": frozenset({"female", "male"}),
    "pt-pt": frozenset({"male"}),
    "pt-br": frozenset({"female", "male"}),
    "ro-ro": frozenset({"female"}),
    "ru-ru": frozenset({"female", "male"}),
    "sv-se": frozenset({"female"}),
    "tr-tr": frozenset({"female"}),
}

ERRORS = ErrorTable(
    # Statuses and response codes worth another try: the same message may go through later.
    # THROTTLED: "identical message already sent to this recipient, try again in a few seconds".
    retryable={"THROTTLED", "INTERNAL_ERROR", "SOMETHING_IS_WRONG", "TOO_MANY_REQUESTS"},
    # Statuses and response codes no retry fixes (the account, the number or the request).
    permanent={
        "INVALID_RECIPIENT",
        "INSUFFICIENT_CREDIT",
        "COUNTRY_NOT_ENABLED",
        "INVALID_SENDER_ID",
        "INVALID_CREDENTIALS",
        "MISSING_CREDENTIALS",
        "ACCOUNT_NOT_ACTIVATED",
        "ALREADY_EXISTS",
        "EMPTY_MESSAGE",
        "TOO_MANY_RECIPIENTS",
        "MISSING_REQUIRED_FIELDS",
        "INVALID_SCHEDULE",
        "NOT_ENOUGH_PERMISSION_TO_LIST_ID",
        "INVALID_LANG",
        "INVALID_VOICE",
        "REGISTRATION_NEEDED",
        "BAD_REQUEST",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "NOT_FOUND",
        "METHOD_NOT_FOUND",
        "INVALID_REQUEST",
    },
)

MAX_DETAIL = 200


def clicksend_language(locale: str | None, default: str) -> str:
    """ClickSend's ``lang`` for ``locale``: ``en_GB`` -> ``en-gb``, ``fr`` -> ``fr-fr``.

    The exact language and region when ClickSend has it; else the language's main region
    (runtime.locales); else the first ClickSend language of that language (``cy`` ->
    ``cy-gb-wls``, ``es-AR`` -> ``es-es``); else ``default``.
    """
    lang = language(locale, default="")
    if not lang:
        return default
    exact = language_region(locale, default="").lower()
    if exact in LANGUAGES:
        return exact
    main = MAIN_REGION.get(lang, "").lower()
    if main in LANGUAGES:
        return main
    return next((code for code in LANGUAGES if code.split("-")[0] == lang), default)


class ClickSendConfig(ProviderSettings):
    """A tenant's public ClickSend settings."""

    sender: str | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description=(
            "SMS sender (`from`): a dedicated number in E.164, or an alphanumeric sender id "
            "where the destination allows it. Unset: ClickSend's shared number pool."
        ),
    )
    voice: Voice = Field(
        default="female",
        description=(
            "The text-to-speech voice, `female` or `male`; a language that has only the other "
            "one uses that. Note: ClickSend's docs say voice is closed to new accounts."
        ),
    )
    default_language: str = Field(
        default="en-us",
        description="ClickSend `lang` for a call whose locale ClickSend does not speak.",
    )
    base_url: BaseUrl = Field(
        default="https://rest.clicksend.com/v3",
        description="ClickSend API root, `/v3` included (tests: a local stub).",
    )

    @field_validator("default_language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        value = value.lower()
        if value not in LANGUAGES:
            raise ValueError(f"not a ClickSend language ({', '.join(LANGUAGES)})")
        return value


class ClickSendCredentials(ProviderCredentials):
    """A tenant's ClickSend API credentials (write-only)."""

    username: str = Field(
        min_length=1, pattern=r"^[^:]+$", description="The API user name (HTTP Basic user)."
    )
    api_key: SecretStr = Field(min_length=1, description="The API key (HTTP Basic password).")


def _detail(body: Mapping[str, Any]) -> str:
    text = " ".join(str(body.get("response_msg") or "no details").split())
    return text[:MAX_DETAIL]


def _json_object(response: HttpResponse) -> dict[str, Any]:
    """An error answer's JSON object, or ``{}`` (a gateway's HTML page, an empty body)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class ClickSendProvider(HttpProvider[ClickSendConfig, ClickSendCredentials]):
    """SMS and text-to-speech calls through ClickSend's REST API v3."""

    name = "clicksend"
    label = "ClickSend"
    channels = frozenset[Channel]({"sms", "voice"})
    config_model = ClickSendConfig
    credentials_model = ClickSendCredentials

    def build_request(
        self, message: PhoneMessage, config: ClickSendConfig, credentials: ClickSendCredentials
    ) -> HttpRequest:
        item: dict[str, Any] = {
            "source": SOURCE,
            "body": message.text,
            "to": message.recipient,
        }
        if message.channel == "voice":
            lang = clicksend_language(message.locale, config.default_language)
            voices = LANGUAGES[lang]
            item["voice"] = config.voice if config.voice in voices else min(voices)
            item["lang"] = lang
            item["custom_string"] = message.id
            item["require_input"] = 0
            item["machine_detection"] = 0
            path = "/voice/send"
        else:
            if config.sender is not None:
                item["from"] = config.sender
            item["custom_string"] = message.id
            path = "/sms/send"
        secret = f"{credentials.username}:{credentials.api_key.get_secret_value()}"
        authorization = "Basic " + base64.b64encode(secret.encode()).decode("ascii")
        return HttpRequest.json(
            config.base_url + path, {"messages": [item]}, {"Authorization": authorization}
        )

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        """The message's ``message_id``, or its status or the request's code as the error.

        A per-message status other than ``SUCCESS`` is a refusal (not queued, so not handed
        off), retryable only for the :data:`ERRORS` table. An HTTP error is classified by
        :func:`answered_error` under ClickSend's ``response_code`` (the HTTP status when the
        body has none): 4xx is permanent except 408/429, 5xx is retryable, and a 5xx other than
        503 counts as handed off.
        """
        if is_success(response.status):
            body = response.json()
            code = str(body.get("response_code") or SUCCESS)
            if code != SUCCESS:
                raise refused(
                    code,
                    f"ClickSend refused the request ({code}: {_detail(body)})",
                    status=response.status,
                    table=ERRORS,
                )
            sent = body["data"]["messages"][0]
            status = str(sent["status"])
            if status != SUCCESS:
                raise refused(
                    status,
                    f"ClickSend refused the message (status {status})",
                    status=response.status,
                    table=ERRORS,
                )
            message_id = str(sent["message_id"])
            if not message_id:
                raise ValueError("empty message_id")
            return Receipt(provider=self.name, message_id=message_id, status=status)
        error = _json_object(response)
        error_code = error.get("response_code")
        raise answered_error(
            response,
            str(error_code) if error_code else None,
            f"ClickSend answered HTTP {response.status}: {_detail(error)}",
            table=ERRORS,
        )


@hookimpl
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register the ClickSend provider; its session opens on first use."""
    register(ClickSendProvider())
