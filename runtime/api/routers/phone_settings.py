"""``/api/v2/phone/settings``: the tenant's fallback policy and default country.

This project's own endpoint (Auth0 has none: its fallback is not the tenant's to choose),
guarded by Auth0's ``read:guardian_factors`` / ``update:guardian_factors`` scopes because these
are the phone factor's settings. Both live in the tenant's ``settings`` (docs/service.md, "What
the database holds"). GET answers both, defaults filled in; PATCH sets the fields given
(``default_country: null`` removes it) and answers both; an unknown field or a bad value is a
400 naming it, and nothing is stored. A change is live on this node when the answer returns,
on the others after their next poll (the tenant's config version is bumped).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from runtime.api.auth import Principal, require
from runtime.api.deps import ServicesDep
from runtime.api.writes import write
from runtime.phone_numbers import region_code
from runtime.store.service.rows import TenantRow
from runtime.tenants import FallbackPolicy, TenantConfig

router = APIRouter(prefix="/api/v2/phone", tags=["phone settings"])

Reader = Annotated[Principal, Depends(require("read:guardian_factors"))]
Writer = Annotated[Principal, Depends(require("update:guardian_factors"))]

_FALLBACK_DEFAULT: FallbackPolicy = TenantConfig.model_fields["fallback"].default


class PhoneSettings(BaseModel):
    """The answer of both methods, and PATCH's body (only the fields given are changed)."""

    model_config = ConfigDict(extra="forbid")

    fallback: FallbackPolicy = Field(
        default=_FALLBACK_DEFAULT,
        description="When a provider that failed without handing the message off falls back "
        "to the default sender: never; retryable (only for errors the provider calls "
        "retryable); always (any error).",
    )
    default_country: str | None = Field(
        default=None,
        description="ISO 3166 alpha-2 code (any case; answered in upper case) of the country "
        "national numbers are read in; null: numbers must carry their country code.",
        examples=["US"],
    )

    @field_validator("default_country", mode="before")
    @classmethod
    def _country(cls, value: object) -> object:
        if value is None:
            return None
        try:
            return region_code(value)
        except ValueError:  # its own message repeats the value: a body's values are not shown
            raise ValueError(
                "must be an ISO 3166 alpha-2 country code with a numbering plan, such as US"
            ) from None


def _settings(row: TenantRow) -> PhoneSettings:
    """The stored policy (checked when it was stored), defaults filled in."""
    stored = row.settings
    return PhoneSettings(
        fallback=stored.get("fallback", _FALLBACK_DEFAULT),
        default_country=stored.get("default_country"),
    )


@router.get(
    "/settings",
    summary="The tenant's fallback policy and default country (this project's own endpoint)",
)
async def get_phone_settings(principal: Reader, svc: ServicesDep) -> PhoneSettings:
    row = await svc.call(svc.store.tenants.get, principal.tenant)
    return _settings(row)


@router.patch(
    "/settings",
    summary="Change the fallback policy and/or the default country (this project's own endpoint)",
    description="Only the fields given change; default_country null removes it. A change is "
    "live for the next delivery.",
)
async def patch_phone_settings(
    body: PhoneSettings, principal: Writer, svc: ServicesDep
) -> PhoneSettings:
    fields = body.model_dump(include=body.model_fields_set)
    if not fields:
        row = await svc.call(svc.store.tenants.get, principal.tenant)
    else:
        row = await write(svc, svc.store.tenants.update_policy, principal.tenant, fields)
    return _settings(row)
