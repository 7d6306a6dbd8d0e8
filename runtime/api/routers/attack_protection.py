"""``/api/v2/attack-protection/phone-limits``: a tenant's phone abuse protection.

This endpoint is this project's own (Auth0 has no equivalent: its SMS and voice limits are
fixed), named in the style of Auth0's attack-protection endpoints and guarded by Auth0's
``read:attack_protection`` / ``update:attack_protection`` scopes. GET answers every field with
the defaults filled in; PATCH sets the fields given (null turns a rate off) and answers the
whole; a bad field is a 400 naming it, and nothing is stored. A change is live on this node
when the answer returns, on the others after their next poll (docs/abuse_protection.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from runtime.api.auth import Principal, require
from runtime.api.deps import ServicesDep
from runtime.api.writes import write

router = APIRouter(prefix="/api/v2/attack-protection", tags=["attack protection"])

Reader = Annotated[Principal, Depends(require("read:attack_protection"))]
Writer = Annotated[Principal, Depends(require("update:attack_protection"))]

_EXAMPLE = {
    "user_messages": "10/hour",
    "user_voice": "1/hour",
    "user_requests": "5 per 5 minutes",
    "ip": "10/minute",
    "recipient": "10/hour",
    "tenant": None,
    "country_hourly_caps": {"GB": 500},
    "allowed_countries": [],
    "blocked_countries": ["KP"],
    "blocked_number_types": ["pager", "personal_number", "premium_rate", "shared_cost", "uan"],
}


@router.get(
    "/phone-limits",
    summary="The tenant's phone limits and geo rules (this project's own endpoint)",
)
async def get_phone_limits(principal: Reader, svc: ServicesDep) -> dict[str, Any]:
    return await svc.call(svc.store.phone_limits.get, principal.tenant)


@router.patch(
    "/phone-limits",
    summary="Change the tenant's phone limits and geo rules (this project's own endpoint)",
    description="Rates are written AMOUNT per [N] second|minute|hour|day ('10/hour'); null "
    "turns a rate off. Countries are ISO 3166 alpha-2 codes; number types are phonenumbers' "
    "types in lower case.",
)
async def patch_phone_limits(
    principal: Writer,
    svc: ServicesDep,
    body: Annotated[dict[str, Any], Body(openapi_examples={"all": {"value": _EXAMPLE}})],
) -> dict[str, Any]:
    return await write(svc, svc.store.phone_limits.update, principal.tenant, body)
