"""One tenant's delivery configuration, assembled from the service's tables.

The rules (docs/service.md, "From the API to a delivery"): the provider is the enabled phone
provider when there is one (Auth0's Unified Phone Experience wins, as Auth0's does), else the
guardian factor's selected provider; ``auth0`` means the tenant's own provider from an import,
or else the platform's default sender. Action providers run the first action bound to their
trigger, at its deployed version, with the action's secrets as credentials; a ``custom``
action also gets the phone templates' senders (``event.notification.from``) in its settings,
the only part of the tenant's configuration the provider sees.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from runtime.errors import ConfigurationError, NotFoundError, UnknownTenantError
from runtime.events import Purpose
from runtime.store.crypto import SealError
from runtime.store.db import DATABASE_ERRORS
from runtime.store.service import ServiceStore
from runtime.store.service.guardian import TEMPLATE_PURPOSES
from runtime.store.service.phone_templates import PURPOSES
from runtime.tenants import TenantConfig

__all__ = ["LoadedTenant", "load_tenants", "tenant_config"]

log = logging.getLogger("runtime.store.tenant_config")

_ACTION_PROVIDERS = {
    "phone-message-hook": "send-phone-message",
    "custom": "custom-phone-provider",
}


def tenant_config(store: ServiceStore, tenant_id: str) -> tuple[TenantConfig, dict[str, str]]:
    """The tenant's :class:`TenantConfig` and its provider credentials, opened (blocking)."""
    try:
        row = store.tenants.get(tenant_id)
    except NotFoundError:
        raise UnknownTenantError(f"no tenant {tenant_id!r} in the database") from None
    senders = _senders(store, tenant_id)
    try:
        provider, config, credentials = _provider(store, tenant_id, row.settings, senders)
    except SealError as exc:
        raise ConfigurationError(
            f"tenant {tenant_id!r}: a credential cannot be opened: {exc}"
        ) from None
    sms, voice = _templates(store, tenant_id, row.settings)
    values: dict[str, Any] = {
        key: row.settings[key]
        for key in ("fallback", "default_country", "record", "record_keep")
        if key in row.settings
    }
    try:
        config_model = TenantConfig(
            id=tenant_id,
            friendly_name=row.friendly_name,
            message_types=frozenset(store.guardian.message_types(tenant_id)),
            provider=provider,
            provider_settings=config,
            templates=sms,
            voice_templates=voice,
            senders=senders,
            phone_limits=store.phone_limits.stored(tenant_id),
            **values,
        )
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise ConfigurationError(f"tenant {tenant_id!r}: {details}") from None
    return config_model, credentials


@dataclass(frozen=True)
class LoadedTenant:
    """One tenant as :func:`load_tenants` read it: its config at ``version`` or, when that
    config cannot be used (a secret sealed under another master key...), the error saying so."""

    version: int
    config: TenantConfig | None
    credentials: dict[str, str] = field(default_factory=dict)
    error: ConfigurationError | None = None


def load_tenants(store: ServiceStore, ids: Sequence[str]) -> dict[str, LoadedTenant]:
    """The tenants ``ids`` that exist (blocking; one thread hop for a whole batch).

    Each version is read before its config, so a change that lands in between is seen again
    by the next poll, never lost. A tenant whose config fails, for any reason but the
    database, is returned with its error: one broken tenant never fails the others'.
    Database errors propagate (the whole batch is unavailable).
    """
    versions = store.tenants.versions_of(ids)
    loaded: dict[str, LoadedTenant] = {}
    for tenant in ids:
        version = versions.get(tenant)
        if version is None:
            continue
        try:
            config, credentials = tenant_config(store, tenant)
        except UnknownTenantError:  # deleted since the versions were read
            continue
        except ConfigurationError as exc:
            log.warning("tenant %s cannot be used: %s", tenant, exc)
            loaded[tenant] = LoadedTenant(version, None, error=exc)
        except DATABASE_ERRORS:
            raise
        except Exception as exc:  # a damaged row: this tenant fails, not the batch
            log.warning("tenant %s cannot be read: %s", tenant, type(exc).__name__)
            problem = f"tenant {tenant!r}: its configuration cannot be read ({type(exc).__name__})"
            loaded[tenant] = LoadedTenant(version, None, error=ConfigurationError(problem))
        else:
            loaded[tenant] = LoadedTenant(version, config, credentials)
    return loaded


def _provider(
    store: ServiceStore, tenant: str, settings: dict[str, Any], senders: Mapping[Purpose, str]
) -> tuple[str, dict[str, Any], dict[str, str]]:
    own = settings.get("provider")
    upe = store.phone_providers.active(tenant)
    if upe is not None:
        found, secret = upe
        if found["name"] == "custom":
            return _action(store, tenant, "custom", senders)
        configuration = found["configuration"]
        return _twilio(
            store,
            tenant,
            settings,
            sid=configuration.get("sid"),
            sender=configuration.get("default_from"),
            service=configuration.get("mssid"),
            token=secret.get("auth_token"),
        )
    selected = store.guardian.selected_provider(tenant)
    if selected == "phone-message-hook":
        return _action(store, tenant, selected)
    if selected == "twilio":
        twilio = store.guardian.twilio(tenant)
        return _twilio(
            store,
            tenant,
            settings,
            sid=twilio["sid"],
            sender=twilio["from"],
            service=twilio["messaging_service_sid"],
            token=store.guardian.twilio_token(tenant),
        )
    if own:  # auth0 selected, and the tenant brought its own provider (tenants import)
        return (
            str(own),
            dict(settings.get("provider_settings", {})),
            store.tenants.credentials(tenant),
        )
    return "default", {}, {}


def _twilio(
    store: ServiceStore,
    tenant: str,
    settings: dict[str, Any],
    *,
    sid: str | None,
    sender: str | None,
    service: str | None,
    token: str | None,
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Twilio with the Auth0 fields, over the imported twilio settings (a ``base_url``...)."""
    imported = settings.get("provider") == "twilio"
    config: dict[str, Any] = dict(settings.get("provider_settings", {})) if imported else {}
    credentials = store.tenants.credentials(tenant) if imported else {}
    if sender:
        config["from_number"] = sender
    if service:
        config["messaging_service_sid"] = service
    if sid:
        credentials["account_sid"] = sid
    if token:
        credentials["auth_token"] = token
    return "twilio", config, credentials


def _action(
    store: ServiceStore,
    tenant: str,
    provider: str,
    senders: Mapping[Purpose, str] | None = None,
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The first action bound to the provider's trigger, at its deployed version; with none
    bound the settings stay empty and the provider refuses them (no message sent).

    ``custom`` also gets ``senders`` (read here when not given: a provider's ``/try``): the
    provider sees its settings, never the tenant's config."""
    bound = store.bindings.list(tenant, _ACTION_PROVIDERS[provider])
    if not bound or bound[0].action.deployed_version is None:
        return provider, {}, {}
    action = bound[0].action
    version = action.deployed_version
    assert version is not None
    config: dict[str, Any] = {
        "source": version.code,
        "name": action.name,
        "action_id": action.id,
        "version_id": version.id,
    }
    if provider == "custom":
        found = _senders(store, tenant) if senders is None else senders
        if found:
            config["senders"] = dict(found)
    return provider, config, store.actions.secret_values(tenant, action.id)


def _templates(
    store: ServiceStore, tenant: str, settings: dict[str, Any]
) -> tuple[dict[Purpose, str], dict[Purpose, str]]:
    """Imported templates, then the guardian ones (SMS), then enabled phone templates."""
    sms: dict[Purpose, str] = dict(settings.get("templates", {}))
    voice: dict[Purpose, str] = dict(settings.get("voice_templates", {}))
    for key, text in (store.guardian.custom_templates(tenant) or {}).items():
        sms[TEMPLATE_PURPOSES[key]] = text
    for template in store.phone_templates.list(tenant, disabled=False):
        purpose = PURPOSES.get(template["type"])
        if purpose is None:
            continue
        body = template["content"].get("body", {})
        if body.get("text"):
            sms[purpose] = body["text"]
        if body.get("voice"):
            voice[purpose] = body["voice"]
    return sms, voice


def _senders(store: ServiceStore, tenant: str) -> dict[Purpose, str]:
    """The enabled phone templates' ``content.from`` by purpose (none when unset): Auth0's
    ``event.notification.from`` of custom-phone-provider."""
    senders: dict[Purpose, str] = {}
    for template in store.phone_templates.list(tenant, disabled=False):
        purpose = PURPOSES.get(template["type"])
        sender = template["content"].get("from")
        if purpose is not None and sender:
            senders[purpose] = sender
    return senders
