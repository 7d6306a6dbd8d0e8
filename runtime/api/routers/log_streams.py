"""``/api/v2/log-streams``: Auth0's log streams of type ``http`` (sink fields, content format
JSONLINES|JSONARRAY|JSONOBJECT, Auth0's category filters, ``isPriority``, status
active|paused|suspended), with Auth0's ``*:log_streams`` scopes.

A created stream receives the events stored after its creation, or from its ``startFrom`` (a
date or a ``log_id`` of the stored log), in order, signed (docs/operations.md, "Log streams");
its ``signing_secret`` is answered on creation (and on ``rotate_signing_secret``) only. PATCH
``status: active`` resumes a paused or suspended stream where it stopped.
``httpAuthorization`` is write-only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from runtime import metrics
from runtime.api.auth import Principal, require
from runtime.api.deps import Services, ServicesDep
from runtime.logs.streams import LogStreamRepository

router = APIRouter(prefix="/api/v2/log-streams", tags=["log streams"])

_EXAMPLE = {
    "name": "SIEM",
    "type": "http",
    "sink": {
        "httpEndpoint": "https://siem.example.com/auth0",
        "httpContentType": "application/json",
        "httpContentFormat": "JSONLINES",
        "httpAuthorization": "Bearer s3cr3t",
        "httpCustomHeaders": [{"header": "X-Source", "value": "phone-actions"}],
    },
    "filters": [{"type": "category", "name": "user.fail"}],
}


def _repository(svc: Services) -> LogStreamRepository:
    return LogStreamRepository(
        svc.engine, svc.keyring, allow_http_hosts=svc.settings.outbound_hosts()
    )


async def _deliver(svc: Services) -> None:
    """Give an active stream its delivery job now (not at the next sweep)."""
    stored = getattr(svc.pipeline, "stored_log", None)
    if stored is not None:
        await stored.streams.sweep(force=True)


@router.post("", status_code=201, summary="Create a log stream (type http)")
async def create_log_stream(
    principal: Annotated[Principal, Depends(require("create:log_streams"))],
    svc: ServicesDep,
    body: Annotated[dict[str, Any], Body(openapi_examples={"http": {"value": _EXAMPLE}})],
) -> dict[str, Any]:
    created = await svc.call(_repository(svc).create, principal.tenant, body)
    await _deliver(svc)
    return created


@router.get("", summary="The tenant's log streams")
async def list_log_streams(
    principal: Annotated[Principal, Depends(require("read:log_streams"))], svc: ServicesDep
) -> list[dict[str, Any]]:
    return await svc.call(_repository(svc).list_streams, principal.tenant)


@router.get("/{id}", summary="One log stream")
async def get_log_stream(
    id: str,
    principal: Annotated[Principal, Depends(require("read:log_streams"))],
    svc: ServicesDep,
) -> dict[str, Any]:
    return await svc.call(_repository(svc).get, principal.tenant, id)


@router.patch("/{id}", summary="Change, pause or resume a log stream")
async def update_log_stream(
    id: str,
    principal: Annotated[Principal, Depends(require("update:log_streams"))],
    svc: ServicesDep,
    body: dict[str, Any],
) -> dict[str, Any]:
    updated = await svc.call(_repository(svc).update, principal.tenant, id, body)
    await _deliver(svc)
    return updated


@router.delete("/{id}", status_code=204, summary="Delete a log stream")
async def delete_log_stream(
    id: str,
    principal: Annotated[Principal, Depends(require("delete:log_streams"))],
    svc: ServicesDep,
) -> Response:
    await svc.call(_repository(svc).delete, principal.tenant, id)
    metrics.forget_log_stream(principal.tenant, id)
    return Response(status_code=204)
