"""Auth0's Unified Phone Experience endpoints: ``/api/v2/branding/phone/providers`` and
``/api/v2/branding/phone/templates``.

One phone provider per tenant (``twilio`` or ``custom``, the action bound to
custom-phone-provider; as Auth0's, ``custom`` is refused until such an action is deployed);
its credentials are sealed and never returned. Templates are Liquid: the two OTP types must
compile and print the code (runtime.templates), else a 400 names the field and the line.
Both ``/try`` endpoints send a real test message through the pipeline (runtime/api/trial.py):
a provider's with that provider, even while disabled; a template's rendered with a sample
code, through the tenant's live provider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from runtime.api import trial
from runtime.api.auth import Principal, require
from runtime.api.deps import Services, ServicesDep
from runtime.api.errors import payload_error
from runtime.api.writes import write
from runtime.errors import ConfigurationError, InvalidInputError
from runtime.events import Channel, Purpose
from runtime.store.service.phone_providers import NO_DEPLOYED_ACTION

if TYPE_CHECKING:
    from runtime.tenants import TenantConfig

router = APIRouter(prefix="/api/v2/branding/phone", tags=["branding phone"])

Disabled = Annotated[bool | None, Query(description="Only disabled (true) or enabled (false).")]
DeliveryMethod = Literal["text", "voice"]
_CHANNELS: dict[str, Channel] = {"text": "sms", "voice": "voice"}
_PURPOSES: dict[str, Purpose] = {
    "otp_enroll": "enrollment"
}  # every other type is sent as a verification


_NO_ACTION = (
    "A bad body, or `name` custom without a deployed action bound to custom-phone-provider "
    f"(errorCode {NO_DEPLOYED_ACTION}, as Auth0's)"
)

CreateProviders = Annotated[Principal, Depends(require("create:phone_providers"))]
ReadProviders = Annotated[Principal, Depends(require("read:phone_providers"))]
UpdateProviders = Annotated[Principal, Depends(require("update:phone_providers"))]
DeleteProviders = Annotated[Principal, Depends(require("delete:phone_providers"))]
CreateTemplates = Annotated[Principal, Depends(require("create:phone_templates"))]
ReadTemplates = Annotated[Principal, Depends(require("read:phone_templates"))]
UpdateTemplates = Annotated[Principal, Depends(require("update:phone_templates"))]
DeleteTemplates = Annotated[Principal, Depends(require("delete:phone_templates"))]


class ProviderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="twilio or custom")
    disabled: StrictBool = False
    configuration: dict[str, Any]
    credentials: dict[str, Any] = Field(description="Write-only: never returned.")


class ProviderUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    disabled: StrictBool | None = None
    configuration: dict[str, Any] | None = None
    credentials: dict[str, Any] | None = None


class TryProvider(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=16)
    delivery_method: DeliveryMethod = "text"


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=32)
    disabled: StrictBool = False
    content: dict[str, Any] | None = None


class TemplateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: dict[str, Any] | None = None
    disabled: StrictBool | None = None


class TryTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=16)
    delivery_method: DeliveryMethod = "text"


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, max_length=20000)
    voice: str | None = Field(default=None, max_length=20000)


class PreviewContent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: PreviewBody = Field(default_factory=PreviewBody)


class TemplatePreview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=32)
    content: PreviewContent = Field(default_factory=PreviewContent)
    locale: str = Field(default="en", min_length=2, max_length=35)


def _given(body: BaseModel) -> dict[str, Any]:
    """The fields the client sent; null is refused for those Auth0 gives no null meaning."""
    fields = {name: getattr(body, name) for name in body.model_fields_set}
    for name, value in fields.items():
        if value is None:
            raise InvalidInputError("must not be null", field=name)
    return fields


# -- phone providers -------------------------------------------------------------------------


@router.get("/providers", summary="The tenant's phone provider (a list of at most one)")
async def list_providers(
    principal: ReadProviders, svc: ServicesDep, disabled: Disabled = None
) -> dict[str, Any]:
    found = await svc.call(svc.store.phone_providers.list, principal.tenant, disabled)
    return {"providers": found}


@router.post(
    "/providers",
    status_code=201,
    summary="Configure the phone provider (409 when one exists)",
    responses={
        400: {"description": _NO_ACTION},
        409: {"description": "Custom phone provider conflict"},
    },
)
async def create_provider(
    body: ProviderCreate, principal: CreateProviders, svc: ServicesDep
) -> dict[str, Any]:
    repo = svc.store.phone_providers
    return await write(
        svc,
        repo.create,
        principal.tenant,
        name=body.name,
        disabled=body.disabled,
        configuration=body.configuration,
        credentials=body.credentials,
    )


@router.get("/providers/{id}", summary="One phone provider (never its credentials)")
async def get_provider(id: str, principal: ReadProviders, svc: ServicesDep) -> dict[str, Any]:
    return await svc.call(svc.store.phone_providers.get, principal.tenant, id)


@router.patch(
    "/providers/{id}",
    summary="Change the phone provider (at least one field)",
    responses={400: {"description": _NO_ACTION}},
)
async def update_provider(
    id: str, body: ProviderUpdate, principal: UpdateProviders, svc: ServicesDep
) -> dict[str, Any]:
    fields = _given(body)
    return await write(svc, svc.store.phone_providers.update, principal.tenant, id, **fields)


@router.delete("/providers/{id}", status_code=204, summary="Remove the phone provider")
async def delete_provider(id: str, principal: DeleteProviders, svc: ServicesDep) -> Response:
    await write(svc, svc.store.phone_providers.delete, principal.tenant, id)
    return Response(status_code=204)


@router.post(
    "/providers/{id}/try",
    status_code=202,
    summary="Send a test message with this provider",
    description="A real delivery through the pipeline with this provider's configuration "
    "(also while it is disabled), never falling back to the default sender. `code` is 0 "
    "when a sender accepted the message, 1 otherwise; `message` says what happened.",
)
async def try_provider(
    id: str, body: TryProvider, principal: CreateProviders, svc: ServicesDep
) -> dict[str, Any]:
    channel = _CHANNELS[body.delivery_method]
    found = await svc.call(trial.provider_trial, svc.store, principal.tenant, id, channel)
    return await _send_trial(svc, found, body.to, channel, "verification", text=None)


# -- phone templates -------------------------------------------------------------------------


@router.get("/templates", summary="The tenant's phone templates")
async def list_templates(
    principal: ReadTemplates, svc: ServicesDep, disabled: Disabled = None
) -> dict[str, Any]:
    found = await svc.call(svc.store.phone_templates.list, principal.tenant, disabled)
    return {"templates": found}


@router.post(
    "/templates",
    status_code=201,
    summary="Create a phone template (409 when its type exists)",
    responses={409: {"description": "Phone template already configured for tenant"}},
)
async def create_template(
    body: TemplateCreate, principal: CreateTemplates, svc: ServicesDep
) -> dict[str, Any]:
    return await write(
        svc,
        svc.store.phone_templates.create,
        principal.tenant,
        type=body.type,
        disabled=body.disabled,
        content=body.content,
    )


@router.post(
    "/templates/preview",
    summary="Render a template's bodies with a sample code, sending nothing",
    description="What a delivery of the type (`otp_enroll` is an enrollment, `otp_verify` a "
    "verification) for `locale` would send by SMS (`text`) and by voice (`voice`), with the "
    "sample code 123456 (spelled digit by digit for voice): rendered by the renderer "
    "deliveries use, with the tenant's friendly name. A body given in `content.body` is "
    "rendered as if it were saved; a missing one is what deliveries send today: the tenant's "
    "enabled template of the type, else its guardian SMS template, else the built-in message "
    "in the locale's language. The other types, which no delivery sends, render the body "
    "given or the type's default. A body that would be refused on save (a Liquid error, no "
    "`{{ code }}` in an OTP type) is a 400 naming the field and the place (line:column).",
)
async def preview_template(
    body: TemplatePreview, principal: ReadTemplates, svc: ServicesDep
) -> dict[str, Any]:
    from runtime.tenant_lookup import async_lookup

    config = await async_lookup(svc.directory)(principal.tenant)
    return _preview(body, config)


def _preview(body: TemplatePreview, tenant: TenantConfig) -> dict[str, Any]:
    """The rendered text and voice of ``body`` for ``tenant`` (pure CPU, bounded by
    runtime.templates): the templates and the call of the pipeline's ``_render``."""
    from runtime import templates
    from runtime.store.service.phone_templates import DEFAULT_CONTENT, PURPOSES, TYPES

    if body.type not in TYPES:
        raise InvalidInputError(f"must be one of {', '.join(TYPES)}", field="type")
    purpose = PURPOSES.get(body.type)
    rendered: dict[str, Any] = {"type": body.type, "locale": body.locale, "code": trial.SAMPLE_CODE}
    for key, channel in _CHANNELS.items():
        field = f"content.body.{key}"
        given: str | None = getattr(body.content.body, key) or None
        if purpose is None:  # no delivery sends it: the body given, or the type's default
            source: str | None = given or DEFAULT_CONTENT[body.type]["body"][key]
        elif given is not None:  # as if saved: the same check as saving it
            problem = templates.check(given, channel, purpose)
            if problem:
                raise InvalidInputError(problem, field=field)
            source = given
        else:  # what deliveries use (pipeline._render); None is the built-in, localised
            overrides = tenant.voice_templates if channel == "voice" else tenant.templates
            source = overrides.get(purpose)
        try:
            rendered[key] = templates.render(
                source,
                channel=channel,
                purpose=purpose or "verification",
                code=trial.SAMPLE_CODE,
                locale=body.locale,
                tenant_id=tenant.id,
                tenant_name=tenant.display_name,
            )
        except ConfigurationError as exc:
            message = str(exc).split(" template: ", 1)[-1]
            raise InvalidInputError(message, field=field) from None
    return rendered


@router.get("/templates/{id}", summary="One phone template")
async def get_template(id: str, principal: ReadTemplates, svc: ServicesDep) -> dict[str, Any]:
    return await svc.call(svc.store.phone_templates.get, principal.tenant, id)


@router.patch("/templates/{id}", summary="Change a template's content or disabled flag")
async def update_template(
    id: str, body: TemplateUpdate, principal: UpdateTemplates, svc: ServicesDep
) -> dict[str, Any]:
    fields = _given(body)
    return await write(svc, svc.store.phone_templates.update, principal.tenant, id, **fields)


@router.delete("/templates/{id}", status_code=204, summary="Delete a phone template")
async def delete_template(id: str, principal: DeleteTemplates, svc: ServicesDep) -> Response:
    await write(svc, svc.store.phone_templates.delete, principal.tenant, id)
    return Response(status_code=204)


@router.patch("/templates/{id}/reset", summary="Back to the type's default content")
async def reset_template(id: str, principal: UpdateTemplates, svc: ServicesDep) -> dict[str, Any]:
    return await write(svc, svc.store.phone_templates.reset, principal.tenant, id)


@router.post(
    "/templates/{id}/try",
    status_code=202,
    summary="Send a test message rendered from this template",
    description="Renders the template's body for the delivery method with a sample code and "
    "sends it through the tenant's provider (the channel enabled for this message).",
)
async def try_template(
    id: str, body: TryTemplate, principal: CreateTemplates, svc: ServicesDep
) -> dict[str, Any]:
    from runtime import templates
    from runtime.store.service.phone_templates import DEFAULT_CONTENT

    channel = _CHANNELS[body.delivery_method]
    template = await svc.call(svc.store.phone_templates.get, principal.tenant, id)
    purpose = _PURPOSES.get(template["type"], "verification")
    key = body.delivery_method
    source = (
        template["content"].get("body", {}).get(key)
        or (DEFAULT_CONTENT[template["type"]]["body"][key])
    )
    found = await svc.call(trial.tenant_trial, svc.store, principal.tenant, channel)
    try:
        text = templates.render(
            source,
            channel=channel,
            purpose=purpose,
            code=trial.SAMPLE_CODE,
            locale="en",
            tenant_id=principal.tenant,
            tenant_name=found.config.display_name,
        )
    except ConfigurationError as exc:
        raise InvalidInputError(str(exc), field=f"content.body.{key}") from None
    result = await _send_trial(svc, found, body.to, channel, purpose, text=text)
    return {"message": result["message"], "status": result["status"]}


async def _send_trial(
    svc: Services,
    found: trial.Trial,
    to: str,
    channel: Channel,
    purpose: Purpose,
    *,
    text: str | None,
) -> dict[str, Any]:
    """Deliver one test message with ``found``'s configuration; Auth0's ``{code, message}``
    with the report's status and delivery id beside them."""
    from runtime.events import PhoneMessageRequest

    try:
        request = PhoneMessageRequest.create(
            default_country=found.config.default_country,
            tenant=found.config.id,
            recipient=to,
            code=trial.SAMPLE_CODE,
            channel=channel,
            purpose=purpose,
            locale="en",
            text=text,
        )
    except InvalidInputError as exc:
        raise payload_error(exc, rename={"recipient": "to"}) from None
    trial.installed(svc.pipeline)
    token = trial.using(found)
    try:
        report = await svc.pipeline.deliver(request)
    finally:
        trial.reset(token)
    accepted = report.status in ("delivered", "stored")
    if accepted:
        message = f"Test message {report.status} by {report.delivered_by}."
    else:
        message = f"Test message {report.status}: {report.detail or report.reason}"
    return {
        "code": 0 if accepted else 1,
        "message": message,
        "status": report.status,
        "delivery_id": report.id,
    }
