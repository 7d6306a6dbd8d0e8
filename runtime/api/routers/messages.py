"""``POST /api/v2/phone/messages``: send one code through the pipeline (this project's own
endpoint, not Auth0's; scope ``create:phone_messages``). The answer is the DeliveryReport."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from runtime.api.auth import Principal, require
from runtime.api.deps import ServicesDep
from runtime.api.errors import ApiError
from runtime.errors import (
    ConfigurationError,
    InvalidInputError,
    StoreUnavailableError,
    UnknownTenantError,
)

router = APIRouter(prefix="/api/v2/phone", tags=["phone messages"])

_FIELDS = {"recipient": "to"}  # the request's names where they differ from this body's


class PhoneMessageBody(BaseModel):
    """One code to send. The tenant is the token's."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(
        min_length=1,
        max_length=32,
        description="Recipient: +14155552671 or 0044..., or a national number when the tenant "
        "sets default_country.",
    )
    code: str = Field(min_length=1, max_length=12, description="The one-time code.")
    channel: Literal["sms", "voice"] = "sms"
    purpose: Literal["verification", "enrollment"] = "verification"
    locale: str = Field(default="en", min_length=2, max_length=35)
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="The same key never sends twice: a repeat returns the first report.",
    )


@router.post(
    "/messages",
    summary="Send a one-time code (this project's own endpoint)",
    description="Runs the delivery pipeline for the token's tenant and returns its report: "
    "`status` is delivered, stored (the outbox), rejected, failed or retrying. The HTTP "
    "status is 200 whenever a report was made, whatever its status.",
)
async def send_message(
    body: PhoneMessageBody,
    principal: Annotated[Principal, Depends(require("create:phone_messages"))],
    svc: ServicesDep,
) -> dict[str, Any]:
    from runtime.events import PhoneMessageRequest

    try:  # held in memory, or loaded on first use; 404 when it is gone
        default_country = (await svc.pipeline.tenant(principal.tenant)).default_country
    except UnknownTenantError:
        raise
    except (ConfigurationError, StoreUnavailableError):
        default_country = None  # the delivery's report says what is wrong, in one line
    try:
        request = PhoneMessageRequest.create(
            default_country=default_country,
            tenant=principal.tenant,
            recipient=body.to,
            code=body.code,
            channel=body.channel,
            purpose=body.purpose,
            locale=body.locale,
            idempotency_key=body.idempotency_key,
        )
    except InvalidInputError as exc:
        field = _FIELDS.get(exc.field or "", exc.field)
        message = str(exc)
        if exc.field and field != exc.field:
            message = message.replace(exc.field, field or "", 1)
        raise ApiError(400, f"Payload validation error: {message}", "invalid_body") from None
    report = await svc.pipeline.deliver(request)
    return report.model_dump(mode="json")
