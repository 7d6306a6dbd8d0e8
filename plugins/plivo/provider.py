"""Plivo provider: one-time codes by SMS (Message API) and by voice call (Call API).

Both are JSON ``POST``s under ``{base_url}/v1/Account/{auth_id}/`` with HTTP Basic
``auth_id:auth_token`` (Plivo's API reference, plivo-python); every path ends with ``/``, which
Plivo requires. Numbers go as E.164 with ``+``, as Plivo's own examples do.

- SMS: ``Message/`` with ``src`` (or ``powerpack_uuid``), ``dst``, ``text`` and optionally
  ``url`` (status callback); 202 ``{"message_uuid": ["…"]}``.
- Voice: ``Call/`` with ``from``, ``to``, ``answer_url`` and ``answer_method``; 201
  ``{"request_uuid": "…"}``. Plivo takes no inline XML: the ``<Speak>`` document is stored
  first (:mod:`plugins.plivo.answers`) and Plivo fetches it from ``answer_url`` when the callee
  picks up.

Errors are ``{"api_id", "error"}`` with no error code of Plivo's own: the HTTP status is the
code, as in Plivo's SDK (400 ValidationError, 401 AuthenticationError, 403 Forbidden or
GeoPermissionError, 404 ResourceNotFoundError, 405/409/422 InvalidRequestError, 500
PlivoServerError). Every 4xx but 408 and 429 is permanent and not handed off; 429 is
retryable; a 5xx is classified by :func:`~runtime.http_provider.answered_error`.
"""

from __future__ import annotations

import base64
import contextlib
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from sqlalchemy.exc import SQLAlchemyError

from plugins.plivo.answers import (
    ANSWER_PATH,
    DEFAULT_ANSWER_TTL,
    AnswerStore,
    speak_language,
    speak_xml,
)
from runtime.errors import ProviderError
from runtime.events import Channel
from runtime.http import HttpObserver, HttpRequest, HttpResponse
from runtime.phone_numbers import normalise_e164
from runtime.provider_kit import (
    BaseUrl,
    HttpProvider,
    ProviderCredentials,
    ProviderSettings,
    SenderId,
    answered_error,
    configuration_error,
    is_success,
)
from runtime.providers import PhoneMessage, Receipt
from runtime.receipts.urls import callback_url

if TYPE_CHECKING:
    from runtime.settings import Settings

__all__ = ["PlivoConfig", "PlivoCredentials", "PlivoProvider"]


# The answer token of the voice call being built (set by PlivoProvider.send around the
# request, read by build_request, so that build_request stays free of I/O).
_ANSWER_TOKEN: ContextVar[str | None] = ContextVar("plivo_answer_token", default=None)


class PlivoConfig(ProviderSettings):
    """A tenant's public Plivo settings."""

    from_number: SenderId | None = Field(
        default=None,
        description="Sender (`src` of SMS, `from` of calls): a Plivo number in E.164, or an "
        "alphanumeric sender id (SMS only). Required for voice.",
    )
    powerpack_uuid: str | None = Field(
        default=None,
        pattern=r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
        description="A Powerpack UUID that picks the SMS sender instead of `from_number` "
        "(set one of the two, not both; Powerpacks cannot place calls).",
    )
    base_url: BaseUrl = Field(
        default="https://api.plivo.com", description="Plivo API origin (tests: a local stub)."
    )
    status_callback: BaseUrl | None = Field(
        default=None, description="SMS only: Plivo posts delivery status here (`url`)."
    )
    answer_base_url: BaseUrl | None = Field(
        default=None,
        description="Voice only, required for voice: the public https URL where this "
        "service's answer app (`serve_answers`) is reachable; Plivo fetches "
        "`{answer_base_url}/plivo/answer/{token}` when the call is answered.",
    )
    answer_ttl: int = Field(
        default=DEFAULT_ANSWER_TTL,
        ge=60,
        le=86_400,
        description="Voice only: seconds an answer document stays fetchable (it holds the "
        "code); it must outlast ringing and Plivo's fetch.",
    )

    @field_validator("from_number")
    @classmethod
    def _number_or_name(cls, value: str | None) -> str | None:
        """A number in E.164 (a valid one: it places calls), or a name with a letter."""
        if value is None:
            return None
        if value.startswith("+"):
            normalise_e164(value)  # ValueError names what is wrong; the number is kept as is
        elif value.strip().isdigit():
            raise ValueError("a phone number must be in E.164 (+ and country code)")
        return value

    @model_validator(mode="after")
    def _one_sender(self) -> PlivoConfig:
        if (self.from_number is None) == (self.powerpack_uuid is None):
            raise ValueError("set exactly one of from_number and powerpack_uuid")
        return self


class PlivoCredentials(ProviderCredentials):
    """A tenant's Plivo account (write-only)."""

    auth_id: str = Field(
        pattern=r"^[A-Za-z0-9]{1,64}$",
        description="The Auth ID (`MA…` or `SA…`): Basic user and part of every path.",
    )
    auth_token: SecretStr = Field(min_length=1, description="The Auth Token: Basic password.")


class PlivoProvider(HttpProvider[PlivoConfig, PlivoCredentials]):
    """SMS and voice through Plivo.

    ``answers`` stores voice answer documents; without it, the store opens on the first voice
    call from ``settings``' database (SMS-only tenants never touch it).
    """

    name = "plivo"
    label = "Plivo"
    channels = frozenset[Channel]({"sms", "voice"})
    config_model = PlivoConfig
    credentials_model = PlivoCredentials
    # A call writes its answer document to the database first, outside the HTTP timeout:
    # the pipeline's own timer bounds the whole attempt.
    enforces_timeout = False
    reaches_phones = True

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        answers: AnswerStore | None = None,
        max_connections: int = 100,
    ) -> None:
        super().__init__(max_connections=max_connections)
        self._settings = settings
        self._answers = answers
        self._owns_answers = answers is None

    @property
    def answers(self) -> AnswerStore:
        """The answer store, opened on first use."""
        if self._answers is None:
            if self._settings is None:
                from runtime.settings import load_settings

                self._settings = load_settings()
            self._answers = AnswerStore.from_url(self._settings.resolved_database_url)
        return self._answers

    async def aclose(self) -> None:
        """Close the pooled connections, and the answer store when this provider opened it."""
        await super().aclose()
        if self._owns_answers and self._answers is not None:
            self._answers.close()
            self._answers = None

    async def send(
        self,
        message: PhoneMessage,
        config: Any,
        credentials: Any,
        *,
        observer: HttpObserver | None = None,
    ) -> Receipt:
        """SMS as the base class sends it; a call stores its answer document first.

        The document is written before the Call request (Plivo may fetch it seconds later),
        and dropped again when Plivo refused the call, so that it is not left fetchable.
        """
        if message.channel != "voice":
            return await super().send(message, config, credentials, observer=observer)
        settings = self._validated(PlivoConfig, config, "config")
        account = self._validated(PlivoCredentials, credentials, "credentials")
        _check_voice(settings)
        xml = speak_xml(message.text, speak_language(message.locale))
        try:
            token = await self.answers.aput(xml, settings.answer_ttl)
        except SQLAlchemyError as exc:
            raise ProviderError(
                "answer_store_error",
                f"could not store the Plivo answer document ({type(exc).__name__})",
                retryable=True,
                handed_off=False,
            ) from None
        context = _ANSWER_TOKEN.set(token)
        try:
            return await super().send(message, settings, account, observer=observer)
        except ProviderError as exc:
            if not exc.handed_off:
                with contextlib.suppress(SQLAlchemyError):  # it expires anyway
                    await self.answers.adiscard(token)
            raise
        finally:
            _ANSWER_TOKEN.reset(context)

    def check(self, message: PhoneMessage, config: Any, credentials: Any) -> None:
        """As the base class checks; a call is checked without its answer document (which
        :meth:`send` stores first)."""
        if message.channel != "voice":
            super().check(message, config, credentials)
            return
        self._validated(PlivoCredentials, credentials, "credentials")
        _check_voice(self._validated(PlivoConfig, config, "config"))

    def build_request(
        self, message: PhoneMessage, config: PlivoConfig, credentials: PlivoCredentials
    ) -> HttpRequest:
        account = f"{config.base_url}/v1/Account/{credentials.auth_id}"
        secret = f"{credentials.auth_id}:{credentials.auth_token.get_secret_value()}"
        auth = {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode("ascii")}
        if message.channel == "voice":
            _check_voice(config)
            token = _ANSWER_TOKEN.get()
            if token is None:  # build_request called outside send: nothing would answer
                raise configuration_error("Plivo voice needs a stored answer document")
            answer_url = f"{config.answer_base_url}{ANSWER_PATH.format(token=token)}"
            call = {
                "from": config.from_number,
                "to": message.recipient,
                "answer_url": answer_url,
                "answer_method": "POST",
            }
            return HttpRequest.json(f"{account}/Call/", call, auth)
        sms: dict[str, str] = {"dst": message.recipient, "text": message.text}
        if config.powerpack_uuid is not None:
            sms["powerpack_uuid"] = config.powerpack_uuid
        else:
            sms["src"] = str(config.from_number)
        if config.status_callback is not None:
            sms["url"] = config.status_callback
        elif self._settings is not None and self._settings.public_base_url:  # runtime/receipts
            sms["url"] = callback_url(
                self._settings.public_base_url, self.name, message.tenant, message.id
            )
        return HttpRequest.json(f"{account}/Message/", sms, auth)

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        body: dict[str, Any] = response.json() if response.body else {}
        if is_success(response.status):
            # A call: 201 {"request_uuid"}; an SMS: 202 {"message_uuid": [...]}, the first.
            uuid = body["request_uuid"] if message.channel == "voice" else body["message_uuid"][0]
            if not isinstance(uuid, str) or not uuid:
                raise ValueError("no uuid")
            return Receipt(provider=self.name, message_id=uuid)
        raise answered_error(
            response, None, f"Plivo answered HTTP {response.status}: {_describe(body)}"
        )


def _check_voice(config: PlivoConfig) -> None:
    """Raise ``configuration_error`` when ``config`` cannot place a call (before any I/O)."""
    if config.from_number is None or not config.from_number.startswith("+"):
        raise configuration_error("Plivo voice needs from_number as an E.164 phone number")
    if config.answer_base_url is None:
        raise configuration_error(
            "Plivo voice needs answer_base_url (where Plivo fetches the call's answer XML)"
        )


def _describe(body: dict[str, Any]) -> str:
    """Plivo's ``error``: a sentence, or an object of field -> problem."""
    error: object = body.get("error")
    if isinstance(error, dict):
        return "; ".join(f"{key}: {value}" for key, value in error.items()) or "no details"
    return str(error) if error else "no details"
