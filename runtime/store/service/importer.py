"""A tenants file of the TOML format into the service's database (``tenants import``).

Each tenant is created (or updated, so that an import can be run again) with its delivery
policy; its provider lands where the API shows it: ``twilio`` as the guardian factor's Twilio
settings and selected provider; an action provider's script as an action with a deployed
version bound to its trigger (``phone-message-hook`` selected, or a ``custom`` phone
provider); any other provider (``outbox``, ``mitto``...) as the tenant's own provider, used
while ``auth0`` is selected; its ``phone_limits`` as the API's phone limits (the fields the
file sets, the others the defaults). Credentials are read from the environment now and sealed.

Given the registered providers, each tenant's ``provider_settings`` and credentials are
checked against its provider's ``config_model`` and ``credentials_model`` first, as a delivery
checks them: a tenant that could never deliver stops the import before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runtime.errors import ConfigurationError, NotFoundError
from runtime.masking import MASK
from runtime.providers import ProviderRegistry
from runtime.store.service import ServiceStore
from runtime.store.service.limits import MAX_CODE_BYTES
from runtime.tenants import TenantConfig, TomlTenantDirectory
from runtime.wording import problems

__all__ = ["Imported", "import_tenants"]

_TRIGGERS = {"phone-message-hook": "send-phone-message", "custom": "custom-phone-provider"}
_METHODS = {"sms": "text", "voice": "voice"}


@dataclass(frozen=True)
class Imported:
    tenant: str
    provider: str
    created: bool
    action_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "provider": self.provider,
            "created": self.created,
            "action_id": self.action_id,
        }


def import_tenants(
    store: ServiceStore,
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    providers: ProviderRegistry | None = None,
) -> list[Imported]:
    """Import every tenant of ``path``; the file's errors, missing credentials and (given
    ``providers``, the registered ones) settings or credentials a tenant's provider refuses
    are one :class:`ConfigurationError` before anything is written."""
    directory = TomlTenantDirectory.from_file(path, environ=environ)
    plans = [(directory.get(t), directory.credentials(directory.get(t))) for t in directory.ids()]
    if providers is not None:
        refused = [p for t, c in plans for p in _provider_problems(t, c, providers)]
        if refused:
            raise ConfigurationError(f"{path}: {'; '.join(refused)}")
    scripts = {t.id: _script(t, path) for t, _ in plans if t.provider in _TRIGGERS}
    return [
        _one(store, tenant, credentials, scripts.get(tenant.id)) for tenant, credentials in plans
    ]


def _provider_problems(
    tenant: TenantConfig, credentials: dict[str, str], providers: ProviderRegistry
) -> list[str]:
    """What the tenant's provider refuses of its settings and credentials (as a delivery
    validates them), each naming the tenant and the field, never a value: credentials are
    secret (a validator's own message that repeats one has it masked)."""
    if tenant.provider not in providers:  # ``default``, or unknown: check_providers says so
        return []
    provider = providers.get(tenant.provider)
    where = f"tenants.{tenant.id}"
    found = []
    try:
        provider.config_model.model_validate(tenant.provider_settings)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False, include_context=False)
        found.append(problems(errors, prefix=f"{where}.provider_settings"))
    try:
        provider.credentials_model.model_validate(credentials)
    except ValidationError as exc:
        known = ", ".join(provider.credentials_model.model_fields) or "none"
        for error in exc.errors(include_input=False, include_url=False, include_context=False):
            loc = error.get("loc", ())
            field = str(loc[0]) if loc else ""
            variable = tenant.credentials_env.get(field)
            if error.get("type") == "extra_forbidden":
                said = f"not a credential of provider {provider.name!r} (its credentials: {known})"
                error = {**error, "msg": said}
            elif error.get("type") == "missing":
                said = f"missing (provider {provider.name!r} requires it; its credentials: {known})"
                error = {**error, "msg": said}
            said = problems([error], prefix=f"{where}.credentials_env")
            if variable:  # the variable, as a missing one is named: where to fix the value
                at = f"{where}.credentials_env.{field}"
                said = said.replace(at, f"{at} (environment variable {variable})", 1)
            found.append(said)
    return [_masked(line, credentials) for line in found]


def _masked(text: str, credentials: Mapping[str, str]) -> str:
    for value in sorted(credentials.values(), key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, MASK)
    return text


def _script(tenant: TenantConfig, path: Path) -> tuple[str, str]:
    """(name, code) of the tenant's action script, relative paths from the file's folder."""
    where = f"tenants.{tenant.id}.provider_settings.script"
    given = tenant.provider_settings.get("script")
    if not isinstance(given, str) or not given:
        raise ConfigurationError(f"{path}: {where}: the action provider needs a script path")
    script = Path(given)  # absolute: the tenants file made a relative one so (its folder's)
    try:
        code = script.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: {where}: cannot read {str(script)!r}: {exc}") from None
    if len(code.encode()) > MAX_CODE_BYTES:
        raise ConfigurationError(f"{path}: {where}: over {MAX_CODE_BYTES} bytes")
    name = tenant.provider_settings.get("name") or script.stem
    return str(name), code


def _one(
    store: ServiceStore,
    tenant: TenantConfig,
    credentials: dict[str, str],
    script: tuple[str, str] | None,
) -> Imported:
    own = tenant.provider not in _TRIGGERS and tenant.provider != "default"
    settings: dict[str, Any] = {
        "fallback": tenant.fallback,
        "record": tenant.record,
        "record_keep": list(tenant.record_keep),
        "templates": dict(tenant.templates),
        "voice_templates": dict(tenant.voice_templates),
    }
    if tenant.default_country:
        settings["default_country"] = tenant.default_country
    if own:
        settings["provider"] = tenant.provider
        settings["provider_settings"] = dict(tenant.provider_settings)
    try:
        store.tenants.get(tenant.id)
        created = False
        store.tenants.update(tenant.id, friendly_name=tenant.friendly_name, settings=settings)
    except NotFoundError:
        created = True
        store.tenants.create(tenant.id, tenant.friendly_name, settings=settings)
    store.tenants.set_credentials(tenant.id, credentials if own else {})
    limits = tenant.phone_limits  # the fields the file sets: the others follow the defaults
    store.phone_limits.replace(
        tenant.id, limits.model_dump(mode="json", include=limits.model_fields_set)
    )
    store.guardian.set_message_types(tenant.id, sorted(tenant.message_types))
    action_id = None
    if tenant.provider == "twilio":
        config = tenant.provider_settings
        store.guardian.set_twilio(
            tenant.id,
            {
                "sid": credentials.get("account_sid"),
                "auth_token": credentials.get("auth_token"),
                "from": config.get("from_number"),
                "messaging_service_sid": config.get("messaging_service_sid"),
            },
        )
        store.guardian.set_selected_provider(tenant.id, "twilio")
    elif script is not None:
        action_id = _action(store, tenant, credentials, script)
    else:
        store.guardian.set_selected_provider(tenant.id, "auth0")
    return Imported(tenant.id, tenant.provider, created, action_id)


def _action(
    store: ServiceStore, tenant: TenantConfig, secrets: dict[str, str], script: tuple[str, str]
) -> str:
    """The script as an action (updated when one of that name exists), deployed and bound."""
    name, code = script
    trigger = _TRIGGERS[tenant.provider]
    given = [{"name": k, "value": v} for k, v in sorted(secrets.items())]
    found, _ = store.actions.list(tenant.id, name=name)
    if found:
        action = store.actions.update(tenant.id, found[0].id, code=code, secrets=given)
    else:
        action = store.actions.create(
            tenant.id,
            name=name,
            supported_triggers=[{"id": trigger}],
            code=code,
            secrets=given,
        )
    store.actions.deploy(tenant.id, action.id)
    store.bindings.replace(tenant.id, trigger, [{"ref": {"type": "action_id", "value": action.id}}])
    if tenant.provider == "phone-message-hook":
        store.guardian.set_selected_provider(tenant.id, "phone-message-hook")
    else:
        methods = [_METHODS[t] for t in sorted(tenant.message_types)]
        configuration = {"delivery_methods": methods}
        existing = store.phone_providers.list(tenant.id)
        if existing:
            store.phone_providers.update(
                tenant.id,
                existing[0]["id"],
                name="custom",
                disabled=False,
                configuration=configuration,
                credentials={},
            )
        else:
            store.phone_providers.create(
                tenant.id,
                name="custom",
                disabled=False,
                configuration=configuration,
                credentials={},
            )
    return action.id
