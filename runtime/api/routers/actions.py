"""``/api/v2/actions/actions``: Auth0's actions (list, create, read, change, delete, deploy).

Bodies and answers are Auth0's (docs/service.md, "Actions API"). Saving code (create, or a
PATCH of ``code`` or ``supported_triggers``) and deploying compile the script in the sandbox
first and refuse it with 400 naming its lines; nothing is stored then. Every change is made
live on this node at once (the tenant directory is refreshed) and on others by their polling.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from runtime.api.action_code import check_code, refresh_directory, trigger_of
from runtime.api.auth import Principal, require
from runtime.api.deps import ServicesDep

__all__ = ["ActionBody", "ActionPatch", "router"]

router = APIRouter(prefix="/api/v2/actions/actions", tags=["actions"])

DEFAULT_CODE = {
    "send-phone-message": "def on_execute_send_phone_message(event, api):\n    return None\n",
    "custom-phone-provider": "def on_execute_custom_phone_provider(event, api):\n    return None\n",
}
"""Code of an action created without any (Auth0 gives one that does nothing, too)."""


class TriggerRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    version: str | None = Field(default=None, min_length=1, max_length=16)


class Dependency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str | None = None
    registry_url: str | None = None


class SecretIn(BaseModel):
    """A secret to store; its value is write-only (never returned, never logged)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    value: str | None = Field(default=None, repr=False)


class ActionBody(BaseModel):
    """``POST /actions/actions``: Auth0's body (``modules`` is not supported)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    supported_triggers: list[TriggerRef] = Field(min_length=1)
    code: str | None = Field(default=None, description="Python; default: a handler doing nothing.")
    runtime: str = "python3.11"
    dependencies: list[Dependency] = Field(default_factory=list)
    secrets: list[SecretIn] = Field(default_factory=list)
    deploy: bool = Field(default=False, description="Deploy the new action at once.")


class ActionPatch(BaseModel):
    """``PATCH /actions/actions/{id}``: the fields to change. ``secrets`` replaces the set;
    an entry without ``value`` keeps its stored value."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    supported_triggers: list[TriggerRef] | None = Field(default=None, min_length=1)
    code: str | None = None
    runtime: str | None = None
    dependencies: list[Dependency] | None = None
    secrets: list[SecretIn] | None = None


def _plain(items: list[Any]) -> list[dict[str, Any]]:
    return [item.model_dump(exclude_none=True) for item in items]


@router.get("", summary="List actions")
async def list_actions(
    principal: Annotated[Principal, Depends(require("read:actions"))],
    svc: ServicesDep,
    triggerId: Annotated[str | None, Query(max_length=64)] = None,  # Auth0's names
    actionName: Annotated[str | None, Query(max_length=255)] = None,
    deployed: bool | None = None,
    page: Annotated[int, Query(ge=0, le=10_000)] = 0,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
    installed: bool | None = None,
) -> dict[str, Any]:
    """Auth0's page: ``{actions, total, page, per_page}``. No marketplace integrations exist
    here, so ``installed=true`` lists none."""
    if installed:
        rows: list[Any] = []
        total = 0
    else:

        def query() -> tuple[list[Any], int]:
            return svc.store.actions.list(
                principal.tenant,
                trigger_id=triggerId,
                name=actionName,
                deployed=deployed,
                page=page,
                per_page=per_page,
            )

        rows, total = await svc.call(query)
    return {
        "actions": [row.to_api() for row in rows],
        "total": total,
        "page": page,
        "per_page": per_page,
    }


@router.post("", status_code=201, summary="Create an action")
async def create_action(
    body: ActionBody,
    request: Request,
    principal: Annotated[Principal, Depends(require("create:actions"))],
    svc: ServicesDep,
) -> dict[str, Any]:
    tenant = principal.tenant
    triggers = _plain(body.supported_triggers)
    trigger = trigger_of(triggers)
    code = body.code if body.code is not None else DEFAULT_CODE.get(trigger or "", "")
    await check_code(request, svc, tenant, name=body.name, code=code, trigger=trigger)

    def create() -> Any:
        row = svc.store.actions.create(
            tenant,
            name=body.name,
            supported_triggers=triggers,
            code=code,
            runtime=body.runtime,
            dependencies=_plain(body.dependencies),
            secrets=[s.model_dump() for s in body.secrets],
        )
        if body.deploy:
            svc.store.actions.deploy(tenant, row.id)
            row = svc.store.actions.get(tenant, row.id)
        return row

    row = await svc.call(create)
    await refresh_directory(svc)
    return row.to_api()  # type: ignore[no-any-return]


@router.get("/{id}", summary="Read an action")
async def get_action(
    id: str,
    principal: Annotated[Principal, Depends(require("read:actions"))],
    svc: ServicesDep,
) -> dict[str, Any]:
    row = await svc.call(svc.store.actions.get, principal.tenant, id)
    return row.to_api()


@router.patch("/{id}", summary="Change an action (live only once deployed)")
async def update_action(
    id: str,
    body: ActionPatch,
    request: Request,
    principal: Annotated[Principal, Depends(require("update:actions"))],
    svc: ServicesDep,
) -> dict[str, Any]:
    tenant = principal.tenant
    fields: dict[str, Any] = body.model_dump(exclude_unset=True)
    if body.supported_triggers is not None:
        fields["supported_triggers"] = _plain(body.supported_triggers)
    if body.dependencies is not None:
        fields["dependencies"] = _plain(body.dependencies)
    if body.secrets is not None:
        fields["secrets"] = [s.model_dump() for s in body.secrets]
    if "code" in fields or "supported_triggers" in fields:
        current = await svc.call(svc.store.actions.get, tenant, id)  # 404 before any check
        await check_code(
            request,
            svc,
            tenant,
            name=fields.get("name") or current.name,
            code=fields.get("code", current.code),
            trigger=trigger_of(fields.get("supported_triggers", current.supported_triggers)),
        )
    row = await svc.call(lambda: svc.store.actions.update(tenant, id, **fields))
    await refresh_directory(svc)
    return row.to_api()


@router.delete("/{id}", status_code=204, summary="Delete an action")
async def delete_action(
    id: str,
    principal: Annotated[Principal, Depends(require("delete:actions"))],
    svc: ServicesDep,
    force: bool = False,
) -> Response:
    """A bound action is deleted only with ``force=true`` (its bindings go with it); 409
    otherwise."""
    await svc.call(lambda: svc.store.actions.delete(principal.tenant, id, force=force))
    await refresh_directory(svc)
    return Response(status_code=204)


@router.post("/{id}/deploy", status_code=202, summary="Deploy an action (a new version)")
async def deploy_action(
    id: str,
    request: Request,
    principal: Annotated[Principal, Depends(require("create:actions"))],
    svc: ServicesDep,
) -> dict[str, Any]:
    """A new immutable version from the action's current code, deployed at once: the triggers
    it is bound to run it from the next delivery. The code is compiled first."""
    tenant = principal.tenant
    current = await svc.call(svc.store.actions.get, tenant, id)
    await check_code(
        request,
        svc,
        tenant,
        name=current.name,
        code=current.code,
        trigger=trigger_of(current.supported_triggers),
    )
    version = await svc.call(svc.store.actions.deploy, tenant, id)
    await refresh_directory(svc)
    return version.to_api()
