"""Event models: Auth0's two phone triggers, and the runtime's request and report.

``SendPhoneMessageEvent`` (trigger ``send-phone-message`` v2) and ``CustomPhoneProviderEvent``
(trigger ``custom-phone-provider`` v1) follow Auth0's event objects field for field, so events
recorded there replay here. Unknown fields are kept (``extra="allow"``): a recorded event keeps
everything it carried. ``PhoneMessageRequest`` is what callers hand the pipeline;
``DeliveryReport`` is what they get back, always, whatever happened.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    computed_field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from runtime.errors import InvalidInputError
from runtime.ids import new_id
from runtime.phone_numbers import E164Number, region_code

__all__ = [
    "Attempt",
    "Channel",
    "ClientInfo",
    "CustomPhoneProviderEvent",
    "DeliveryReport",
    "MessageOptions",
    "Notification",
    "PhoneMessageRequest",
    "Purpose",
    "RequestContext",
    "SendPhoneMessageEvent",
    "TenantInfo",
    "TriggerEvent",
    "parse_event",
]

Channel = Literal["sms", "voice"]
Purpose = Literal["enrollment", "verification"]
OTP_CODE_PATTERN = r"^[0-9A-Za-z]{4,12}$"
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def _printable(low: int, high: int) -> Callable[[str], str]:
    """The check of a text of ``low`` to ``high`` characters without control characters:
    tenant ids and idempotency keys (a database cannot store NUL, and no HTTP header carries
    control characters). One check says both in the user's terms ("must be 1 to 255
    characters"): pydantic's own length check, put after a validator, counts "items"."""

    def check(value: str) -> str:
        if not low <= len(value) <= high:
            raise PydanticCustomError(
                "string_length", "must be {low} to {high} characters", {"low": low, "high": high}
            )
        if _CONTROL_CHARACTER.search(value):
            raise PydanticCustomError(
                "control_characters", "must not contain control characters (tab, newline, NUL, ...)"
            )
        return value

    return check


_TenantId = Annotated[
    str,
    AfterValidator(_printable(1, 64)),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 64}),
]
_IdempotencyKey = Annotated[
    str,
    AfterValidator(_printable(1, 255)),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 255}),
]


_OTP_CODE = re.compile(OTP_CODE_PATTERN.strip("^$"))


def _otp_code(value: str) -> str:
    """The code: said in the user's terms, not as the pattern ("String should match ...")."""
    if not _OTP_CODE.fullmatch(value):
        raise PydanticCustomError("otp_code", "must be 4 to 12 letters or digits")
    return value


_OtpCode = Annotated[
    str, AfterValidator(_otp_code), WithJsonSchema({"type": "string", "pattern": OTP_CODE_PATTERN})
]


class _Open(BaseModel):
    """Auth0 sub-objects: documented fields typed, anything else kept as recorded."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _Frozen(_Open):
    """Sub-objects a request only reads: immutable, so one empty instance can be shared."""

    model_config = ConfigDict(frozen=True)


class GeoIP(_Frozen):
    cityName: str | None = None
    continentCode: str | None = None
    countryCode: str | None = None
    countryCode3: str | None = None
    countryName: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    subdivisionCode: str | None = None
    subdivisionName: str | None = None
    timeZone: str | None = None


_NO_GEOIP = GeoIP()


class RequestContext(_Frozen):
    """``event.request``: where the login that asked for the code came from.

    ``correlation_id`` is that login transaction's id (Auth0's ``transaction.correlation_id``,
    from ``/authorize``). It rides here so that a request built from an event, or by a program,
    carries it to the action's event; it is never part of ``event.request`` (not dumped).
    """

    ip: str | None = None
    method: str | None = None
    hostname: str | None = None
    language: str | None = None
    user_agent: str | None = None
    geoip: GeoIP = Field(default_factory=lambda: _NO_GEOIP)
    correlation_id: str | None = Field(default=None, max_length=255, exclude=True)


_NO_REQUEST_CONTEXT = RequestContext()


def _no_request_context() -> RequestContext:
    """The default ``request``: one shared immutable empty instance, not one per message."""
    return _NO_REQUEST_CONTEXT


class ClientInfo(_Open):
    client_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class TenantInfo(_Open):
    id: str = Field(min_length=1)
    friendly_name: str | None = None


class Transaction(_Open):
    correlation_id: str | None = None


MAX_EVENT_CODE = 64
"""The longest ``code`` an event may carry (Auth0's are six digits; ours 4 to 12)."""
EVENT_CODE_PATTERN = r"^[0-9A-Za-z]+$"
"""What an event's ``code`` may hold: letters and digits (it is masked out of everything an
action produces, spelled out and with separators between its characters: a code holding
separators made that pattern backtrack for hours)."""


class MessageOptions(_Open):
    """``event.message_options`` of ``send-phone-message``."""

    action: Literal["enrollment", "second-factor-authentication"]
    # Bounded: a code is masked wherever the action's output could show it, on the supervisor
    # too, and the work grows with its length (a one-time code is a few characters).
    code: str = Field(
        min_length=1, max_length=MAX_EVENT_CODE, pattern=EVENT_CODE_PATTERN, repr=False
    )
    message_type: Channel
    recipient: E164Number
    text: str = Field(repr=False)


class Notification(_Open):
    """``event.notification`` of ``custom-phone-provider``."""

    message_type: Literal[
        "otp_verify", "otp_enroll", "blocked_account", "change_password", "password_breach"
    ]
    delivery_method: Literal["text", "voice"]
    recipient: E164Number
    from_: str | None = Field(default=None, alias="from")
    code: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EVENT_CODE,
        pattern=EVENT_CODE_PATTERN,
        repr=False,
    )
    locale: str | None = None
    as_text: str = Field(repr=False)
    as_voice: str = Field(repr=False)


class _TriggerEvent(_Open):
    client: ClientInfo = Field(default_factory=ClientInfo)
    custom_domain: dict[str, Any] | None = None
    request: RequestContext = Field(default_factory=_no_request_context)
    secrets: dict[str, str] = Field(default_factory=dict, repr=False)
    tenant: TenantInfo
    transaction: Transaction | None = None
    user: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _carry_correlation_id(self) -> _TriggerEvent:
        """The transaction's correlation id also on ``request`` (see :class:`RequestContext`),
        so the request made from this event hands it on to the action it runs."""
        found = self.transaction.correlation_id if self.transaction is not None else None
        if found and self.request.correlation_id is None:
            self.request = self.request.model_copy(update={"correlation_id": found})
        return self


class SendPhoneMessageEvent(_TriggerEvent):
    """Trigger ``send-phone-message`` v2, the event object as Auth0 documents it."""

    trigger: Literal["send-phone-message"] = Field(default="send-phone-message", exclude=True)
    message_options: MessageOptions

    def to_custom_phone_provider(self) -> CustomPhoneProviderEvent:
        """The same message as a ``custom-phone-provider`` event (§2.5 mapping)."""
        mo = self.message_options
        data = self.model_dump(mode="json", by_alias=True, exclude={"message_options"})
        data["user"] = {k: v for k, v in self.user.items() if k != "identities"}
        client = dict(data["client"])
        client["metadata"] = client.pop("client_metadata", None) or client.get("metadata") or {}
        data["client"] = client
        data["notification"] = {
            "message_type": _ACTION_TO_NOTIFICATION[mo.action],
            "delivery_method": "text" if mo.message_type == "sms" else "voice",
            "recipient": mo.recipient,
            "code": mo.code,
            "locale": (mo.model_extra or {}).get("language") or self.request.language,
            "as_text": mo.text,
            "as_voice": mo.text,
        }
        return CustomPhoneProviderEvent.model_validate(data)


class CustomPhoneProviderEvent(_TriggerEvent):
    """Trigger ``custom-phone-provider`` v1, the event object as Auth0 documents it."""

    trigger: Literal["custom-phone-provider"] = Field(default="custom-phone-provider", exclude=True)
    notification: Notification
    connection: dict[str, Any] | None = None
    organization: dict[str, Any] | None = None

    def to_send_phone_message(self) -> SendPhoneMessageEvent:
        """The same message as a ``send-phone-message`` event, for OTP notifications only."""
        n = self.notification
        action = _NOTIFICATION_TO_ACTION.get(n.message_type)
        if action is None:
            raise InvalidInputError(
                f"{n.message_type!r} has no send-phone-message equivalent "
                "(only otp_enroll and otp_verify do)",
                field="notification.message_type",
            )
        if not n.code:
            raise InvalidInputError("send-phone-message needs the code", field="notification.code")
        data = self.model_dump(
            mode="json", by_alias=True, exclude={"notification", "connection", "organization"}
        )
        data["message_options"] = {
            "action": action,
            "code": n.code,
            "message_type": "sms" if n.delivery_method == "text" else "voice",
            "recipient": n.recipient,
            "text": n.as_text if n.delivery_method == "text" else n.as_voice,
        }
        return SendPhoneMessageEvent.model_validate(data)


TriggerEvent = SendPhoneMessageEvent | CustomPhoneProviderEvent

_ACTION_TO_NOTIFICATION = {"enrollment": "otp_enroll", "second-factor-authentication": "otp_verify"}
_NOTIFICATION_TO_ACTION = {v: k for k, v in _ACTION_TO_NOTIFICATION.items()}


def parse_event(raw: str | bytes | dict[str, Any]) -> TriggerEvent:
    """Parse the JSON of either trigger, recognised by ``message_options`` or ``notification``.

    Raises :class:`InvalidInputError` naming the field (or the JSON line and column).
    """
    if isinstance(raw, str | bytes):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from exc
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"not UTF-8 text (byte {exc.start})") from exc
        except RecursionError:
            raise InvalidInputError("JSON nested too deeply") from None
    else:
        data = raw
    if not isinstance(data, dict):
        raise InvalidInputError("an event must be a JSON object")
    model: type[TriggerEvent]
    if "message_options" in data:
        model = SendPhoneMessageEvent
    elif "notification" in data:
        model = CustomPhoneProviderEvent
    else:
        raise InvalidInputError(
            "not a phone trigger event: expected 'message_options' (send-phone-message) "
            "or 'notification' (custom-phone-provider)",
            field="message_options",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # from None: pydantic's error text shows input values, which contain the code
        raise InvalidInputError.from_validation_errors(exc.errors()) from None


class PhoneMessageRequest(BaseModel):
    """One code to deliver: what a caller (CLI, Verify API, library) hands the pipeline.

    ``text`` is the rendered message when the caller already has it (a replayed event);
    otherwise the pipeline renders the tenant's template. The code never appears in ``repr``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant: _TenantId
    recipient: E164Number
    code: _OtpCode = Field(repr=False)
    channel: Channel = "sms"
    purpose: Purpose = "verification"
    locale: str = Field(default="en", min_length=2, max_length=35)
    text: str | None = Field(default=None, max_length=1600, repr=False)
    user: dict[str, Any] = Field(default_factory=dict, repr=False)
    client: ClientInfo = Field(default_factory=ClientInfo, repr=False)
    request: RequestContext = Field(default_factory=_no_request_context, repr=False)
    idempotency_key: _IdempotencyKey | None = None

    @classmethod
    def create(cls, *, default_country: str | None = None, **fields: Any) -> PhoneMessageRequest:
        """Validate ``fields``; raise :class:`InvalidInputError` naming each bad field.

        ``default_country`` (the tenant's, ISO 3166 alpha-2) is the only way a national number
        (no ``+`` or ``00``) is accepted: it is read in that country, never guessed.
        """
        if default_country is not None:
            try:
                default_country = region_code(default_country)
            except ValueError as exc:
                raise InvalidInputError(str(exc), field="default_country") from None
        try:
            return cls.model_validate(fields, context={"default_country": default_country})
        except ValidationError as exc:
            # from None: pydantic's error text shows input values, which contain the code
            raise InvalidInputError.from_validation_errors(exc.errors()) from None

    @classmethod
    def from_event(
        cls, event: TriggerEvent, *, tenant: str | None = None, idempotency_key: str | None = None
    ) -> PhoneMessageRequest:
        """The request a recorded trigger event stands for (its text is kept as rendered)."""
        locale = event.request.language
        if isinstance(event, CustomPhoneProviderEvent):
            locale = event.notification.locale or locale
            event = event.to_send_phone_message()
        else:
            locale = (event.message_options.model_extra or {}).get("language") or locale
        mo = event.message_options
        return cls.create(
            tenant=tenant or event.tenant.id,
            recipient=mo.recipient,
            code=mo.code,
            channel=mo.message_type,
            purpose="enrollment" if mo.action == "enrollment" else "verification",
            locale=locale or "en",
            text=mo.text,
            user=event.user,
            client=event.client,
            request=event.request,
            idempotency_key=idempotency_key,
        )


class Attempt(BaseModel):
    """One try at one provider. ``error`` never contains the code or a credential."""

    provider: str
    fallback: bool = False
    outcome: Literal["delivered", "failed"]
    latency_ms: float
    message_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    retryable: bool | None = None
    handed_off: bool = False


class DeliveryReport(BaseModel):
    """The answer to every request: delivered, rejected by policy, or failed to deliver."""

    id: str = Field(default_factory=new_id)
    tenant: str
    recipient: str
    channel: Channel
    purpose: Purpose
    status: Literal["delivered", "stored", "rejected", "failed", "retrying"]
    reason: str | None = None
    detail: str | None = None
    delivered_by: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    idempotency_key: str | None = None
    replayed: bool = False
    limit: str | None = None  # rate_limited: the rule that refused (docs/abuse_protection.md)
    retry_after: int | None = None  # rate_limited, limits_unavailable: seconds to wait
    created_at: datetime = Field(default_factory=partial(datetime.now, UTC))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def path(self) -> list[str]:
        """Providers tried, in order (``["twilio", "outbox"]`` after a fallback)."""
        return [a.provider for a in self.attempts]
