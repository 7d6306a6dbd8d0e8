"""``POST /api/v2/phone/messages``: send one code through the pipeline (this project's own
endpoint, not Auth0's; scope ``create:phone_messages``). The answer is the DeliveryReport:
200, or for a policy refusal its HTTP status (429/403/503, runtime/api/refusals.py) with the
report kept whole and Auth0's error fields added, so a client reads either. A national number
needs the tenant's default_country: when the database does not answer for it, there is no
delivery to report, and the answer is 503 ``store_unavailable`` (docs/service.md, Errors)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from runtime.api.auth import Principal, require
from runtime.api.deps import ServicesDep
from runtime.api.errors import error_body, payload_error
from runtime.api.lean_route import LeanRoute
from runtime.api.refusals import POLICY_STATUS, retry_after_header
from runtime.errors import (
    ConfigurationError,
    InvalidInputError,
    StoreUnavailableError,
    UnknownTenantError,
)
from runtime.phone_numbers import needs_country

router = APIRouter(prefix="/api/v2/phone", tags=["phone messages"], route_class=LeanRoute)

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
        description="The same key never sends twice while its record is kept "
        "(idempotency_retention_days): a repeat returns the first report.",
    )


@router.post(
    "/messages",
    summary="Send a one-time code (this project's own endpoint)",
    description="Runs the delivery pipeline for the token's tenant and returns its report: "
    "`status` is delivered, stored (the outbox), rejected, failed or retrying. The HTTP "
    "status is 200, except for a policy refusal: `rate_limited` 429 and `limits_unavailable` "
    "503 (both with Retry-After), `country_blocked` and `number_type_blocked` 403. A refusal's "
    "body is the report plus Auth0's error fields (statusCode, error, message, errorCode). "
    "A national number whose tenant's settings the database did not give (its "
    "default_country unknown) is 503 store_unavailable, Auth0's error shape only.",
    response_model=None,
    openapi_extra={
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "The body's idempotency_key, as a header (the body's wins "
                "when both are given); checked the same way.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        ]
    },
    responses={
        403: {"description": "Refused by a country or number-type rule (the report)"},
        429: {"description": "Refused by a rate limit; Retry-After in seconds (the report)"},
        503: {
            "description": "The rate limits could not be checked; Retry-After (the report). "
            "Or the database did not answer for a national number (store_unavailable)"
        },
    },
)
async def send_message(
    body: PhoneMessageBody,
    principal: Annotated[Principal, Depends(require("create:phone_messages"))],
    svc: ServicesDep,
    http_request: Request,
) -> Response:
    from runtime.events import PhoneMessageRequest

    unreadable: StoreUnavailableError | None = None
    try:  # held in memory, or loaded on first use; 404 when it is gone
        default_country = (await svc.pipeline.tenant(principal.tenant)).default_country
    except UnknownTenantError:
        raise
    except ConfigurationError:
        default_country = None  # the delivery's report says what is wrong, in one line
    except StoreUnavailableError as exc:  # the tenant's default_country is unknown, not unset
        default_country, unreadable = None, exc
    try:
        request = PhoneMessageRequest.create(
            default_country=default_country,
            tenant=principal.tenant,
            recipient=body.to,
            code=body.code,
            channel=body.channel,
            purpose=body.purpose,
            locale=body.locale,
            # the header as the Verify API takes it (checked like the body's field)
            idempotency_key=body.idempotency_key or http_request.headers.get("idempotency-key"),
        )
    except InvalidInputError as exc:
        if unreadable is not None and exc.field == "recipient" and needs_country(body.to):
            # a national number is read in the tenant's default_country, which the database
            # did not give: not the caller's error, the store's (503 store_unavailable, the
            # detail in the log), as for any request the database did not answer. A number
            # refused whatever the country stays the caller's error (400).
            raise unreadable from None
        raise payload_error(exc, rename=_FIELDS) from None
    delivered = await svc.pipeline.deliver(request, tenant_unreadable=unreadable)
    report = delivered.model_dump(mode="json")
    status = POLICY_STATUS.get(report["reason"]) if report["status"] == "rejected" else None
    if status is None:
        # Encoded here, not by FastAPI: its jsonable_encoder walk plus json.dumps cost about
        # 150 us a report; the report is JSON already (model_dump(mode="json")).
        return Response(orjson.dumps(report), media_type="application/json")
    return refusal_response(status, report)


def refusal_response(status: int, report: dict[str, Any]) -> JSONResponse:
    """The report with Auth0's error fields added (none of its own names clash with them)."""
    message = f"No code was sent: {report.get('detail') or report['reason']}"
    body = {**report, **error_body(status, message, report["reason"])}
    headers = retry_after_header(report) if status != 403 else None
    return JSONResponse(body, status, headers=headers or None)
