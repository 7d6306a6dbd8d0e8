"""Auth0's guardian phone-factor endpoints: ``/api/v2/guardian/factors/phone/...``.

Message types, the selected provider (auth0, twilio or phone-message-hook), Twilio's settings
(``auth_token`` is write-only: read back as null) and the two SMS templates (Liquid, checked
by runtime.templates: a template that does not compile or print the code is a 400 naming it).
Scopes ``read:guardian_factors`` and ``update:guardian_factors``.

A template left at its default reads as Auth0's default text (:data:`DEFAULT_TEMPLATES`) and
sends the built-in message in the user's language; a PUT of that exact text keeps it so, field
by field (stored as the built-in messages' Liquid, runtime.store.service.phone_templates), so
saving back what GET shows changes nothing a delivery sends.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from runtime.api.auth import Principal, require
from runtime.api.deps import ServicesDep
from runtime.api.writes import write
from runtime.store.service.guardian import TEMPLATE_PURPOSES
from runtime.store.service.phone_templates import BUILT_IN_SOURCES

router = APIRouter(prefix="/api/v2/guardian/factors/phone", tags=["guardian phone factor"])

Reader = Annotated[Principal, Depends(require("read:guardian_factors"))]
Writer = Annotated[Principal, Depends(require("update:guardian_factors"))]
Provider = Literal["auth0", "twilio", "phone-message-hook"]

DEFAULT_TEMPLATES = {
    "enrollment_message": "{{code}} is your verification code for {{tenant.friendly_name}}. "
    "Please enter this code to verify your enrollment.",
    "verification_message": "{{code}} is your verification code for {{tenant.friendly_name}}",
}
"""Auth0's defaults (the OAS ``default`` of both fields): what GET answers for a template left
at its default, and the text that, PUT, keeps a field at its default."""
_BUILT_IN = {key: BUILT_IN_SOURCES["sms", purpose] for key, purpose in TEMPLATE_PURPOSES.items()}


class MessageTypes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_types: list[Literal["sms", "voice"]] = Field(max_length=2)


class SelectedProvider(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Provider


class TwilioSettings(BaseModel):
    """Every field optional (Auth0's PUT); null clears one. ``auth_token`` is never returned."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str | None = Field(default=None, alias="from", min_length=1, max_length=64)
    messaging_service_sid: str | None = Field(default=None, min_length=1, max_length=1000)
    auth_token: str | None = Field(default=None, min_length=1, max_length=1000)
    sid: str | None = Field(default=None, min_length=1, max_length=1000)


class GuardianTemplates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enrollment_message: str = Field(min_length=1, max_length=8192)
    verification_message: str = Field(min_length=1, max_length=8192)


@router.get("/message-types", summary="The phone factor's message types")
async def get_message_types(principal: Reader, svc: ServicesDep) -> dict[str, list[str]]:
    types = await svc.call(svc.store.guardian.message_types, principal.tenant)
    return {"message_types": types}


@router.put("/message-types", summary="Enable sms and/or voice")
async def put_message_types(
    body: MessageTypes, principal: Writer, svc: ServicesDep
) -> dict[str, list[str]]:
    chosen = await write(
        svc, svc.store.guardian.set_message_types, principal.tenant, list(body.message_types)
    )
    return {"message_types": chosen}


@router.get("/selected-provider", summary="The provider that sends the factor's messages")
async def get_selected_provider(principal: Reader, svc: ServicesDep) -> dict[str, str]:
    name = await svc.call(svc.store.guardian.selected_provider, principal.tenant)
    return {"provider": name}


@router.put("/selected-provider", summary="Select auth0, twilio or phone-message-hook")
async def put_selected_provider(
    body: SelectedProvider, principal: Writer, svc: ServicesDep
) -> dict[str, str]:
    name = await write(
        svc, svc.store.guardian.set_selected_provider, principal.tenant, body.provider
    )
    return {"provider": name}


@router.get("/providers/twilio", summary="Twilio's settings (auth_token always null)")
async def get_twilio(principal: Reader, svc: ServicesDep) -> dict[str, Any]:
    return await svc.call(svc.store.guardian.twilio, principal.tenant)


@router.put("/providers/twilio", summary="Set Twilio's settings (the fields given)")
async def put_twilio(body: TwilioSettings, principal: Writer, svc: ServicesDep) -> dict[str, Any]:
    fields = body.model_dump(by_alias=True, include=body.model_fields_set)
    return await write(svc, svc.store.guardian.set_twilio, principal.tenant, fields)


@router.get("/templates", summary="The enrollment and verification SMS templates")
async def get_templates(principal: Reader, svc: ServicesDep) -> dict[str, str]:
    stored = await svc.call(svc.store.guardian.custom_templates, principal.tenant)
    return _shown(stored)


@router.put("/templates", summary="Set both templates (Liquid; each must print the code)")
async def put_templates(
    body: GuardianTemplates, principal: Writer, svc: ServicesDep
) -> dict[str, str]:
    """A message equal to Auth0's default keeps that message at the default: the built-in
    message in the user's language, as before any PUT."""
    given = body.model_dump()
    repo = svc.store.guardian
    tenant = principal.tenant

    def save() -> dict[str, str]:
        if given == DEFAULT_TEMPLATES and repo.custom_templates(tenant) is None:
            return dict(DEFAULT_TEMPLATES)  # already the defaults: nothing to store
        chosen = {
            key: _BUILT_IN[key] if value == DEFAULT_TEMPLATES[key] else value
            for key, value in given.items()
        }
        return _shown(repo.set_templates(tenant, chosen))

    return await write(svc, save)


def _shown(stored: dict[str, str] | None) -> dict[str, str]:
    """The templates as Auth0 shows them: a message at its default is Auth0's default text."""
    return {
        key: default if not stored or stored.get(key) in (None, _BUILT_IN[key]) else stored[key]
        for key, default in DEFAULT_TEMPLATES.items()
    }
