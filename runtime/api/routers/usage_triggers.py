"""``/api/v2/usage-triggers``: a tenant's thresholds of messages per hour, day or month, each
with a webhook called once per period when the count crosses it (this project's own endpoint,
after Twilio's usage triggers; docs/operations.md). The webhook's signing secret is in the
answer that creates the trigger, and never again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from runtime.api.auth import Principal, require
from runtime.api.deps import ServicesDep
from runtime.usage_triggers import UsageTriggerStore

router = APIRouter(prefix="/api/v2/usage-triggers", tags=["usage triggers"])

Creator = Annotated[Principal, Depends(require("create:usage_triggers"))]
Reader = Annotated[Principal, Depends(require("read:usage_triggers"))]
Deleter = Annotated[Principal, Depends(require("delete:usage_triggers"))]
_EXAMPLE = {"period": "hour", "threshold": 500, "url": "https://alerts.example.com/sms"}


def _store(svc: ServicesDep) -> UsageTriggerStore:
    return UsageTriggerStore(svc.engine, svc.keyring, allow_hosts=svc.settings.outbound_hosts())


@router.post("", status_code=201, summary="Create a usage trigger (the answer has its secret)")
async def create_usage_trigger(
    principal: Creator,
    svc: ServicesDep,
    body: Annotated[dict[str, Any], Body(openapi_examples={"hourly": {"value": _EXAMPLE}})],
) -> dict[str, Any]:
    return await svc.call(_store(svc).create, principal.tenant, body)


@router.get("", summary="The tenant's usage triggers")
async def list_usage_triggers(principal: Reader, svc: ServicesDep) -> list[dict[str, Any]]:
    return await svc.call(_store(svc).listing, principal.tenant)


@router.get("/{trigger_id}", summary="One usage trigger")
async def get_usage_trigger(trigger_id: str, principal: Reader, svc: ServicesDep) -> dict[str, Any]:
    return await svc.call(_store(svc).get, principal.tenant, trigger_id)


@router.delete("/{trigger_id}", status_code=204, summary="Delete a usage trigger")
async def delete_usage_trigger(trigger_id: str, principal: Deleter, svc: ServicesDep) -> Response:
    await svc.call(_store(svc).delete, principal.tenant, trigger_id)
    return Response(status_code=204)
