"""Telesign provider plugin: one-time codes by SMS (Messaging API) and by voice (Voice API).

Form-urlencoded ``POST {base_url}/v1/messaging`` (``phone_number``, ``message``,
``message_type=OTP``, optional ``sender_id``, ``external_id``) and ``POST {base_url}/v1/voice``
(``phone_number``, ``message``, ``message_type=OTP``, ``voice``); numbers go without ``+``
(Telesign's API docs). Success is a 2xx with a ``reference_id`` (status 290 "Message in progress"
for SMS, 103 "Call in progress" for voice).

Authentication is HMAC-SHA256 by default, exactly as TeleSign's ``python_telesign`` SDK
(``RestClient.generate_telesign_headers``) signs it; see :func:`telesign_signature`. Basic
authentication (``customer_id:api_key``) is the alternative.

Telesign says to code against the codes in the body, not the HTTP status: ``errors[].code``
(five digits, negative for request problems) and ``status.code``. The first ``errors[].code``
is the reported code. The account and authentication codes (``ERRORS.permanent``) come with
status 500 "Transaction not attempted" or 501 "Not authorized": no retry fixes them and nothing
was sent. Any answer whose ``status.code`` is 500 or 501 was not attempted, so it is never
handed off, even under an HTTP 5xx; other errors are classified by HTTP status.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Callable
from email.utils import formatdate
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr

from runtime import hookimpl
from runtime.errors import ProviderError
from runtime.events import Channel
from runtime.http import HttpRequest, HttpResponse, form_urlencode
from runtime.locales import MAIN_REGION, language, language_region
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
    refused,
)
from runtime.providers import PhoneMessage, Receipt
from runtime.receipts.tokens import TokenCallbacks, token_callbacks

if TYPE_CHECKING:
    from runtime.providers import Provider
    from runtime.settings import Settings

__all__ = [
    "TelesignConfig",
    "TelesignCredentials",
    "TelesignProvider",
    "register_providers",
    "telesign_signature",
    "telesign_voice",
]

SMS_RESOURCE = "/v1/messaging"
VOICE_RESOURCE = "/v1/voice"
FORM = "application/x-www-form-urlencoded"
HMAC_METHOD = "HMAC-SHA256"

ERRORS = ErrorTable(
    # errors[].code values that no retry fixes: the account, the product or the signature is
    # wrong (Telesign's "Transaction not attempted" / "Not authorized" table in its
    # docs). Telesign's own answer: not attempted, so not handed off, whatever the HTTP status.
    permanent={
        "-10009",  # invalid source IP address
        "-10033",  # trial account: destination number not verified
        "-20002",  # product not enabled for this Customer ID
        "-30000",  # invalid Customer ID
        "-30001",  # Customer ID account suspended
        "-30004",  # missing Authorization header
        "-30005",  # Authorization header not in the correct format
        "-30006",  # invalid signature
        "-30007",  # missing Date / x-ts-date header
        "-30008",  # invalid x-ts-auth-method header
        "-30009",  # Date / x-ts-date not RFC 822 compliant
        "-30010",  # Date / x-ts-date out of the tolerated range (clock skew)
        "-30011",  # x-ts-nonce too long or too short
        "-30012",  # x-ts-nonce used recently
        "-30015",  # invalid API key
    },
    final=True,
)
# status.code values that say the transaction was not attempted (nothing was handed off).
NOT_ATTEMPTED_STATUSES = frozenset({"500", "501"})

# Telesign's text-to-speech voices (all female), by language tag ("Voice API: voice" [doc]).
VOICES = frozenset(
    f"f-{tag}"
    for tag in (
        "zh-HK", "zh-CN", "zh-TW", "da-DK", "nl-NL", "en-AU", "en-GB", "en-US", "en-CA",
        "en-IN", "fi-FI", "fr-FR", "fr-CA", "it-IT", "ja-JP", "ko-KR", "nb-NO", "pl-PL",
        "pt-BR", "pt-PT", "es-MX", "es-ES",
    )
)  # fmt: skip
DEFAULT_VOICE = "f-en-US"


class TelesignConfig(ProviderSettings):
    """A tenant's public Telesign settings."""

    base_url: BaseUrl = Field(
        default="https://rest-api.telesign.com",
        description="Telesign API origin (`https://rest-ww.telesign.com` also works; tests: a "
        "local stub).",
    )
    auth_method: Literal["hmac", "basic"] = Field(
        default="hmac",
        description="`hmac`: TSA HMAC-SHA256 signature per request (the SDK's default); "
        "`basic`: HTTP Basic with `customer_id:api_key`.",
    )
    sender_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=15,
        description="SMS `sender_id` (needs approval by Telesign); default: Telesign picks one.",
    )
    voice: str | None = Field(
        default=None,
        pattern=r"^f-[a-z]{2}-[A-Z]{2}$",
        description="A fixed TTS voice (`f-en-GB`); default: the voice of the message locale, "
        "else `f-en-US`.",
    )


class TelesignCredentials(ProviderCredentials):
    """A tenant's Telesign credentials (write-only)."""

    customer_id: str = Field(min_length=1, description="The account's Customer ID.")
    api_key: SecretStr = Field(
        min_length=1, description="The API key (base64, as TelePortal shows it)."
    )


def telesign_signature(
    api_key: str,
    *,
    method: str,
    content_type: str,
    date: str,
    nonce: str,
    body: str,
    resource: str,
) -> str:
    """The base64 HMAC-SHA256 of Telesign's string to sign, keyed with the decoded API key.

    The string is, one line each: the method, the content type, the ``Date`` header,
    ``x-ts-auth-method:HMAC-SHA256``, ``x-ts-nonce:<nonce>``, the url-encoded body (only when
    there is a content type and a body) and the resource path. This is the canonical form of
    TeleSign's SDK (``python_telesign``, ``telesign/rest.py``), which sends no ``x-ts-date``.
    Raises ``binascii.Error`` when ``api_key`` is not base64.
    """
    lines = [method, content_type, date, f"x-ts-auth-method:{HMAC_METHOD}", f"x-ts-nonce:{nonce}"]
    if content_type and body:
        lines.append(body)
    lines.append(resource)
    keyed = _keyed_hmac(api_key).copy()
    keyed.update("\n".join(lines).encode("utf-8"))
    return base64.b64encode(keyed.digest()).decode("ascii")


@lru_cache(maxsize=256)
def _keyed_hmac(api_key: str) -> hmac.HMAC:
    """An HMAC-SHA256 keyed with the decoded ``api_key``, copied for each signature: decoding
    the key and keying the HMAC once per key, not per request (bench/providers.py)."""
    return hmac.new(base64.b64decode(api_key), digestmod=hashlib.sha256)


@lru_cache(maxsize=4)
def _http_date(second: int) -> str:
    """The RFC 7231 date of one whole second (a request's ``Date`` changes once a second)."""
    return formatdate(second, usegmt=True)


def telesign_voice(locale: str | None) -> str:
    """The Telesign voice for ``locale``: its region's voice (``en-GB`` -> ``f-en-GB``), else
    the language's main region (``fr-BE`` -> ``f-fr-FR``), else ``f-en-US``."""
    exact = f"f-{language_region(locale)}"
    if exact in VOICES:
        return exact
    main = f"f-{MAIN_REGION.get(language(locale), '')}"
    return main if main in VOICES else DEFAULT_VOICE


class TelesignProvider(HttpProvider[TelesignConfig, TelesignCredentials]):
    """SMS and voice through Telesign.

    ``clock`` (seconds since the epoch) and ``nonce`` feed the HMAC headers; tests fix them.
    """

    name = "telesign"
    label = "Telesign"
    channels = frozenset[Channel]({"sms", "voice"})
    config_model = TelesignConfig
    credentials_model = TelesignCredentials
    receipts: TokenCallbacks | None = None  # set at registration when public_base_url is set

    def __init__(
        self,
        *,
        max_connections: int = 100,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = lambda: str(uuid.UUID(bytes=os.urandom(16), version=4)),
    ) -> None:
        super().__init__(max_connections=max_connections)
        self._clock = clock
        self._nonce = nonce

    def build_request(
        self, message: PhoneMessage, config: TelesignConfig, credentials: TelesignCredentials
    ) -> HttpRequest:
        fields = {
            "phone_number": digits_only(message.recipient),
            "message": message.text,
            "message_type": "OTP",
        }
        if message.channel == "voice":
            resource = VOICE_RESOURCE
            fields["voice"] = config.voice or telesign_voice(message.locale)
        else:
            resource = SMS_RESOURCE
            if config.sender_id is not None:
                fields["sender_id"] = config.sender_id
            fields["external_id"] = message.id
            if self.receipts is not None:  # the SMS's delivery report (runtime/receipts)
                fields["callback_url"] = self.receipts.url(self.name, message.tenant, message.id)
        body = form_urlencode(fields)
        headers = self._auth_headers(config, credentials, resource, body)
        return HttpRequest("POST", config.base_url + resource, headers, body.encode("ascii"))

    def _auth_headers(
        self,
        config: TelesignConfig,
        credentials: TelesignCredentials,
        resource: str,
        body: str,
    ) -> dict[str, str]:
        api_key = credentials.api_key.get_secret_value()
        if config.auth_method == "basic":
            pair = f"{credentials.customer_id}:{api_key}".encode()
            return {
                "Authorization": f"Basic {base64.b64encode(pair).decode('ascii')}",
                "Content-Type": FORM,
                "Accept": "application/json",
            }
        date = _http_date(int(self._clock()))
        nonce = self._nonce()
        try:
            signature = telesign_signature(
                api_key,
                method="POST",
                content_type=FORM,
                date=date,
                nonce=nonce,
                body=body,
                resource=resource,
            )
        except (binascii.Error, ValueError):
            raise configuration_error(
                "Telesign api_key is not base64, which HMAC authentication needs"
            ) from None
        return {
            "Authorization": f"TSA {credentials.customer_id}:{signature}",
            "Date": date,
            "Content-Type": FORM,
            "Accept": "application/json",
            "x-ts-auth-method": HMAC_METHOD,
            "x-ts-nonce": nonce,
        }

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        body: Any = response.json() if response.body else {}
        if not isinstance(body, dict):
            body = {}
        status = body.get("status") if isinstance(body.get("status"), dict) else {}
        status_code = str(status["code"]) if status.get("code") is not None else None
        code = _first_error_code(body)
        if is_success(response.status):
            if body.get("reference_id") or code is None:
                # A 2xx without reference_id and without errors is unreadable (KeyError).
                return Receipt(
                    provider=self.name, message_id=str(body["reference_id"]), status=status_code
                )
            raise refused(
                code,
                _describe(response, body, status_code),
                retryable=False,
                status=response.status,
            )
        raise _error(response, code, status_code, _describe(response, body, status_code))


def _first_error_code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code")
        return str(code) if code is not None else None
    return None


def _describe(response: HttpResponse, body: dict[str, Any], status_code: str | None) -> str:
    errors = body.get("errors")
    detail = "no details"
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        detail = str(errors[0].get("description") or detail)
    status = f", status {status_code}" if status_code is not None else ""
    return f"Telesign answered HTTP {response.status}{status}: {detail}"


def _error(
    response: HttpResponse, code: str | None, status_code: str | None, text: str
) -> ProviderError:
    """An error answer: Telesign's codes first, then its status, then the HTTP status."""
    if status_code in NOT_ATTEMPTED_STATUSES and code not in ERRORS:
        # Telesign says it did not attempt the transaction: not handed off, whatever the HTTP.
        retryable = response.status in (408, 429) or response.status >= 500
        return refused(code or response.status, text, retryable=retryable, status=response.status)
    return answered_error(response, code, text, table=ERRORS)


@hookimpl
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register the Telesign provider; its session opens on first use."""
    provider = TelesignProvider()
    provider.receipts = token_callbacks(settings)  # runtime/receipts
    register(provider)
