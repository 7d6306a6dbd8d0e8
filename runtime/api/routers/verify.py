"""The Verify API (this project's own, docs/verify.md): enroll a phone, confirm it with its
code; send a code to the enrolled phone, verify it. Scopes ``create:phone_enrollments`` and
``create:phone_challenges``. The runtime makes the code: the caller never sees it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress

from runtime.api.auth import Principal, require
from runtime.api.deps import Services, ServicesDep
from runtime.api.errors import ApiError
from runtime.api.refusals import POLICY_STATUS, retry_after_header
from runtime.errors import ConfigurationError, StoreUnavailableError, UnknownTenantError
from runtime.events import ClientInfo, RequestContext
from runtime.otp import Caller, CodeHasher, OtpStore, Sent, VerifyService, request_locale
from runtime.otp.service import FAILURES, Checked, error_code
from runtime.phone_numbers import normalise_e164

router = APIRouter(prefix="/api/v2/phone", tags=["verify"])

_CODE = r"^[0-9]{4,10}$"
_KEY = Field(
    default=None,
    min_length=1,
    max_length=200,
    description="The same key never sends a second code: a repeat answers with the first "
    "request's enrollment or challenge. The Idempotency-Key header works too.",
)
_IP = Field(
    default=None,
    description="The end user's IP address, as your backend saw it: what the tenant's ip "
    "rate limit counts (the address this request comes from is your backend's, never counted).",
)
_LOCALE = Field(
    default=None,
    min_length=2,
    max_length=35,
    description="The user's own locale: used when neither x-request-language nor "
    "Accept-Language gives one.",
)
# a refused delivery, by the report's reason: the HTTP status (others: 400); the policy's
# refusals as POST /api/v2/phone/messages answers them
_REFUSED = {
    **POLICY_STATUS,
    "message_type_disabled": 403,
    "idempotency_in_progress": 409,
    "idempotency_key_reused": 409,
    "store_unavailable": 503,
    "shutting_down": 503,
}
_CHECK_STATUS = {"wrong": 403, "expired": 403, "exhausted": 429, "used": 409, "not_sent": 409}


class EnrollmentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=255)
    phone_number: str = Field(
        min_length=1,
        max_length=32,
        description="E.164, or national when the tenant sets default_country.",
    )
    channel: Literal["sms", "voice"] = "sms"
    locale: str | None = _LOCALE
    idempotency_key: str | None = _KEY
    ip: IPvAnyAddress | None = _IP


class ChallengeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=255)
    channel: Literal["sms", "voice"] | None = Field(
        default=None, description="Default: the channel the phone was enrolled with."
    )
    locale: str | None = _LOCALE
    idempotency_key: str | None = _KEY
    ip: IPvAnyAddress | None = _IP


class CodeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=_CODE, description="The code the user received.")


def verify_service(svc: Services, app_state: Any) -> VerifyService:
    """The app's one :class:`VerifyService` (made on first use, on the app's store)."""
    service: VerifyService | None = getattr(app_state, "verify", None)
    if service is None:
        settings = svc.settings
        store = OtpStore(
            svc.engine,
            CodeHasher(svc.keyring),
            ttl=settings.otp_ttl,
            max_attempts=settings.otp_max_attempts,
        )
        service = VerifyService(
            pipeline=svc.pipeline,
            store=store,
            run=svc.call,
            submit=svc.submit,
            code_length=settings.otp_length,
        )
        app_state.verify = service
    return service


def _caller(
    request: Request,
    tenant: str,
    user_locale: str | None,
    language: str | None,
    ip: IPvAnyAddress | None = None,
) -> Caller:
    headers = request.headers
    locale = request_locale(language, headers.get("accept-language"), user_locale)
    # the end user's address as the caller gives it: the connection's is the caller's (a
    # backend that asks for every one of its users), never counted against the ip rule
    context = RequestContext(
        ip=str(ip) if ip is not None else None,
        method=request.method,
        hostname=headers.get("host"),
        language=locale,
        user_agent=headers.get("user-agent"),
    )
    return Caller(tenant=tenant, locale=locale, client=ClientInfo(), request=context)


def _sent(sent: Sent) -> dict[str, Any]:
    """The answer for a sent code, or the refusal of its delivery as an error."""
    delivery = sent.delivery
    if delivery is not None and delivery["status"] in ("rejected", "failed"):
        reason = delivery.get("reason") or delivery["status"]
        status = _REFUSED.get(reason, 400) if delivery["status"] == "rejected" else 502
        headers = retry_after_header(delivery) if status in (429, 503) else None
        message = f"No code was sent: {delivery.get('detail') or reason}"
        if delivery["status"] == "failed":
            message = f"The code could not be delivered: {delivery.get('detail') or reason}"
        raise ApiError(status, message, reason, headers=headers or None)
    return _view(sent.kind, sent.row, delivery, replayed=sent.replayed)


def _view(
    kind: str, row: dict[str, Any], delivery: dict[str, Any] | None, *, replayed: bool = False
) -> dict[str, Any]:
    from runtime.store.service.common import iso

    view: dict[str, Any] = {"id": row["id"], "user_id": row["user_id"]}
    if kind == "challenge":
        view["enrollment_id"] = row["enrollment_id"]
    view.update(
        {
            "phone_number": row.get("phone_number"),
            "channel": row["channel"],
            "locale": row["locale"],
            "status": row["status"],
            "expires_at": iso(row["expires_at"]),
            "created_at": iso(row["created_at"]),
        }
    )
    done = "confirmed_at" if kind == "enrollment" else "verified_at"
    view[done] = iso(row.get(done))
    view["delivery"] = delivery
    if replayed:
        view["replayed"] = True
    return view


def _checked(checked: Checked) -> dict[str, Any]:
    check = checked.check
    if check.outcome == "not_found" or check.row is None:
        raise ApiError(404, f"The {checked.kind} does not exist.", f"{checked.kind}_not_found")
    if check.outcome != "ok":
        message = FAILURES[check.outcome]
        if check.outcome == "wrong":
            message = f"Invalid code ({check.attempts_left} attempts left)."
        raise ApiError(_CHECK_STATUS[check.outcome], message, error_code(check.outcome))
    return _view(checked.kind, check.row, check.row.get("delivery"))


async def _recipient(svc: Services, tenant: str, number: str) -> str:
    """``number`` in E.164, read in the tenant's default country when it is national."""
    lookup = getattr(svc.pipeline, "tenant", None)  # async (lazy directories) when there
    try:
        config = await lookup(tenant) if lookup else svc.pipeline.tenants.get(tenant)
        country = config.default_country
    except UnknownTenantError:
        raise  # 404
    except (ConfigurationError, StoreUnavailableError):
        country = None  # the delivery's report says what is wrong, in one line
    try:
        return normalise_e164(number, country)
    except ValueError as exc:
        raise ApiError(
            400, f"Payload validation error: '{exc}' on property phone_number.", "invalid_body"
        ) from None


@router.post(
    "/enrollments",
    status_code=201,
    summary="Enroll a phone: send it a code (this project's own endpoint)",
)
async def create_enrollment(
    body: EnrollmentBody,
    request: Request,
    principal: Annotated[Principal, Depends(require("create:phone_enrollments"))],
    svc: ServicesDep,
    x_request_language: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    phone = await _recipient(svc, principal.tenant, body.phone_number)
    caller = _caller(request, principal.tenant, body.locale, x_request_language, body.ip)
    sent = await verify_service(svc, request.app.state).enroll(
        caller,
        user_id=body.user_id,
        phone_number=phone,
        channel=body.channel,
        idempotency_key=body.idempotency_key or idempotency_key,
    )
    return _sent(sent)


@router.post("/enrollments/{id}/confirm", summary="Confirm an enrollment with its code")
async def confirm_enrollment(
    id: str,
    body: CodeBody,
    request: Request,
    principal: Annotated[Principal, Depends(require("create:phone_enrollments"))],
    svc: ServicesDep,
) -> dict[str, Any]:
    caller = _caller(request, principal.tenant, None, None)
    return _checked(await verify_service(svc, request.app.state).confirm(caller, id, body.code))


@router.post(
    "/challenges",
    status_code=201,
    summary="Send a code to the user's enrolled phone (this project's own endpoint)",
)
async def create_challenge(
    body: ChallengeBody,
    request: Request,
    principal: Annotated[Principal, Depends(require("create:phone_challenges"))],
    svc: ServicesDep,
    x_request_language: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    caller = _caller(request, principal.tenant, body.locale, x_request_language, body.ip)
    sent = await verify_service(svc, request.app.state).challenge(
        caller,
        user_id=body.user_id,
        channel=body.channel,
        idempotency_key=body.idempotency_key or idempotency_key,
    )
    return _sent(sent)


@router.post("/challenges/{id}/verify", summary="Verify a challenge's code")
async def verify_challenge(
    id: str,
    body: CodeBody,
    request: Request,
    principal: Annotated[Principal, Depends(require("create:phone_challenges"))],
    svc: ServicesDep,
) -> dict[str, Any]:
    caller = _caller(request, principal.tenant, None, None)
    return _checked(await verify_service(svc, request.app.state).verify(caller, id, body.code))


__all__ = ["router", "verify_service"]
