"""``/api/v2/actions/actions/{id}/versions``: an action's immutable versions, and rollback
(``POST .../versions/{vid}/deploy``: a new deployed version identical to ``vid``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from runtime.api.action_code import check_code, refresh_directory, trigger_of
from runtime.api.auth import Principal, require
from runtime.api.deps import ServicesDep

__all__ = ["router"]

router = APIRouter(prefix="/api/v2/actions/actions/{id}/versions", tags=["actions"])


@router.get("", summary="List an action's versions (newest first)")
async def list_versions(
    id: str,
    principal: Annotated[Principal, Depends(require("read:actions"))],
    svc: ServicesDep,
    page: Annotated[int, Query(ge=0, le=10_000)] = 0,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """Auth0's page: ``{versions, total, page, per_page}``."""
    rows, total = await svc.call(
        lambda: svc.store.actions.versions(principal.tenant, id, page=page, per_page=per_page)
    )
    return {
        "versions": [row.to_api() for row in rows],
        "total": total,
        "page": page,
        "per_page": per_page,
    }


@router.get("/{version_id}", summary="Read one version of an action")
async def get_version(
    id: str,
    version_id: str,
    principal: Annotated[Principal, Depends(require("read:actions"))],
    svc: ServicesDep,
) -> dict[str, Any]:
    row = await svc.call(svc.store.actions.version, principal.tenant, id, version_id)
    return row.to_api()


@router.post(
    "/{version_id}/deploy", status_code=202, summary="Roll back: deploy a copy of a version"
)
async def rollback(
    id: str,
    version_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(require("create:actions"))],
    svc: ServicesDep,
) -> dict[str, Any]:
    """A new deployed version identical to ``version_id`` (the action's code becomes it too).
    The old code is compiled again first: the sandbox may have tightened since."""
    tenant = principal.tenant
    action = await svc.call(svc.store.actions.get, tenant, id)
    old = await svc.call(svc.store.actions.version, tenant, id, version_id)
    await check_code(
        request,
        svc,
        tenant,
        name=action.name,
        code=old.code,
        trigger=trigger_of(old.supported_triggers),
    )
    row = await svc.call(svc.store.actions.rollback, tenant, id, version_id)
    await refresh_directory(svc)
    return row.to_api()
