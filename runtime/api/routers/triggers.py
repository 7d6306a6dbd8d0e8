"""``/api/v2/actions/triggers``: the two phone triggers this runtime runs, their bindings
(which deployed actions a trigger runs; PATCH replaces the list, in execution order), and a
sample event of each (this runtime's own, not Auth0's: what an editor's Test tab starts from)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from runtime.api.action_code import refresh_directory
from runtime.api.auth import Principal, require
from runtime.api.deps import ServicesDep
from runtime.api.sample_events import sample_event
from runtime.errors import NotFoundError
from runtime.store.service.actions import DEFAULT_RUNTIME, RUNTIMES

__all__ = ["TRIGGERS", "router"]

router = APIRouter(prefix="/api/v2/actions/triggers", tags=["actions"])

TRIGGERS: list[dict[str, Any]] = [
    {
        "id": trigger,
        "version": version,
        "status": "CURRENT",  # Auth0's: CURRENT, or DEPRECATED for an older version
        "runtimes": list(RUNTIMES),
        "default_runtime": DEFAULT_RUNTIME,
        "compatible_triggers": [],
        "binding_policy": "trigger-bound",
    }
    for trigger, version in (("send-phone-message", "v2"), ("custom-phone-provider", "v1"))
]
"""Auth0's trigger objects for the triggers this runtime runs (both bound by the tenant)."""


class BindingRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="binding_id, action_id or action_name")
    value: str


class BindingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: BindingRef
    display_name: str | None = Field(default=None, max_length=255)


class BindingsPatch(BaseModel):
    """``PATCH .../bindings``: the whole list, in execution order."""

    model_config = ConfigDict(extra="forbid")

    bindings: list[BindingIn]


@router.get("", summary="List the triggers this runtime runs")
async def list_triggers(
    _principal: Annotated[Principal, Depends(require("read:actions"))],
) -> dict[str, Any]:
    return {"triggers": TRIGGERS}


@router.get("/{trigger_id}/sample", summary="A sample event of a trigger (to test an action)")
async def trigger_sample(
    trigger_id: str,
    principal: Annotated[Principal, Depends(require("read:actions"))],
) -> dict[str, Any]:
    """The trigger's event for a made-up user and message, as the caller's tenant: a payload
    for ``POST /actions/actions/{id}/test``. This runtime's own endpoint (not Auth0's)."""
    try:
        return sample_event(trigger_id, principal.tenant)
    except KeyError:
        raise NotFoundError(f"The trigger {trigger_id!r} does not exist.") from None


@router.get("/{trigger_id}/bindings", summary="List a trigger's bindings")
async def list_bindings(
    trigger_id: str,
    principal: Annotated[Principal, Depends(require("read:actions"))],
    svc: ServicesDep,
    page: Annotated[int, Query(ge=0, le=10_000)] = 0,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """Auth0's page: ``{bindings, total, page, per_page}``."""
    rows = await svc.call(svc.store.bindings.list, principal.tenant, trigger_id)
    chosen = rows[page * per_page : (page + 1) * per_page]
    return {
        "bindings": [row.to_api() for row in chosen],
        "total": len(rows),
        "page": page,
        "per_page": per_page,
    }


@router.patch("/{trigger_id}/bindings", summary="Replace a trigger's bindings")
async def update_bindings(
    trigger_id: str,
    body: BindingsPatch,
    principal: Annotated[Principal, Depends(require("update:actions"))],
    svc: ServicesDep,
) -> dict[str, Any]:
    """Each ref names a deployed action of this tenant supporting the trigger (by
    ``action_id`` or ``action_name``) or keeps a binding (``binding_id``). Answers
    ``{bindings}``."""
    refs = [item.model_dump(exclude_none=True) for item in body.bindings]
    rows = await svc.call(svc.store.bindings.replace, principal.tenant, trigger_id, refs)
    await refresh_directory(svc)
    return {"bindings": [row.to_api() for row in rows]}
