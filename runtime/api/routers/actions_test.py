"""``POST /api/v2/actions/actions/{id}/test``: run an action's current code (deployed or not)
in the real sandbox on a payload, as its trigger's event, with its stored secrets.

The answer is Auth0's ``{"payload": {...}}``; its fields are this runtime's (docs/service.md,
"Testing an action"): ``outcome``, ``result``, ``error`` and its ``traceback`` (the tenant's
own frames, with their lines), ``errors`` (compile issues with their lines), ``logs``,
``http`` (each call the action made), ``handed_off``, ``notification`` and
``stats.duration_ms``. Secrets and the payload's code are masked out of all of it. The action
really runs: its HTTP calls are made, as in Auth0's editor.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.api.action_code import ensure_sandbox, script_name, trigger_of
from runtime.api.auth import Principal, require
from runtime.api.deps import ServicesDep
from runtime.api.errors import ApiError, payload_error
from runtime.api.lean_route import LeanRoute
from runtime.errors import InvalidInputError

__all__ = ["TestBody", "router"]

router = APIRouter(prefix="/api/v2/actions/actions", tags=["actions"], route_class=LeanRoute)


class TestBody(BaseModel):
    """Auth0's test body: the event to run the action on."""

    __test__ = False  # not a pytest class
    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any] = Field(
        description="The trigger's event (send-phone-message: message_options; "
        "custom-phone-provider: notification). The other trigger's event is converted. "
        "`tenant` is always the token's; `secrets` adds to (or overrides) the stored ones."
    )


@router.post("/{id}/test", summary="Run an action on a payload in the sandbox")
async def test_action(
    id: str,
    body: TestBody,
    request: Request,
    principal: Annotated[Principal, Depends(require("create:actions"))],
    svc: ServicesDep,
) -> dict[str, Any]:
    tenant = principal.tenant
    action = await svc.call(svc.store.actions.get, tenant, id)
    trigger = trigger_of(action.supported_triggers)
    if trigger is None:  # pragma: no cover - the store accepts no other trigger
        raise ApiError(400, "The action has no trigger this runtime runs.", "invalid_body")
    event, extra = _event(body.payload, trigger, tenant)
    secrets = await svc.call(svc.store.actions.secret_values, tenant, id)
    secrets.update(extra)
    await ensure_sandbox(request)
    try:
        result = await svc.runner.run(
            tenant=tenant,
            name=script_name(action.name, action.id),
            source=action.code,
            trigger=trigger,
            event=event,
            secrets=secrets,
        )
    except ValueError as exc:  # more secrets than the sandbox takes
        raise ApiError(400, f"Payload validation error: {exc}.", "invalid_body") from None
    return {
        "payload": {
            "outcome": result.outcome,
            "result": result.result,
            "error": result.error,
            "traceback": result.traceback,
            "errors": [issue.model_dump() for issue in result.compile_errors],
            "logs": result.logs,
            "http": [call.model_dump(mode="json") for call in result.http],
            "handed_off": result.handed_off,
            "notification": result.notification,
            "stats": {"duration_ms": round(result.duration_ms, 3)},
        }
    }


def _event(
    payload: dict[str, Any], trigger: str, tenant: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The payload as ``trigger``'s event (the tenant's own id), and the secrets it gives."""
    from runtime.events import (
        CustomPhoneProviderEvent,
        SendPhoneMessageEvent,
        TriggerEvent,
        parse_event,
    )

    given = payload.get("secrets", {})
    if not isinstance(given, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in given.items()
    ):
        raise _bad("must be an object of strings", "payload.secrets")
    tenant_info = payload.get("tenant")
    data = {**payload, "secrets": {}}
    data["tenant"] = {**(tenant_info if isinstance(tenant_info, dict) else {}), "id": tenant}
    try:
        event: TriggerEvent = parse_event(data)
        if trigger == "custom-phone-provider" and isinstance(event, SendPhoneMessageEvent):
            event = event.to_custom_phone_provider()
        elif trigger == "send-phone-message" and isinstance(event, CustomPhoneProviderEvent):
            event = event.to_send_phone_message()
    except InvalidInputError as exc:  # each property with its own message
        raise payload_error(exc, prefix=("payload",)) from None
    except ValidationError as exc:  # pragma: no cover - parse_event wraps pydantic's
        raise _bad(f"{exc.error_count()} errors", "payload") from None
    return event.model_dump(mode="json", by_alias=True, exclude_none=True), dict(given)


def _bad(message: str, field: str) -> ApiError:
    return ApiError(
        400, f"Payload validation error: '{message}' on property {field}.", "invalid_body"
    )
