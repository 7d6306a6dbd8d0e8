"""Test messages for ``/try`` endpoints: a real delivery through the service's pipeline, with
a configuration the tenant has not made live yet (a disabled phone provider, a template).

The pipeline reads tenants from its directory. :class:`TrialDirectory` wraps that directory
once per pipeline and answers, for the one task that sends the test message, with the trial
:class:`TenantConfig` (a context variable: every other delivery keeps seeing the tenant's
live configuration). The message is accounted as any other: a report and a log event.
"""

from __future__ import annotations

import contextvars
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from runtime.errors import NotFoundError
from runtime.store.schema import phone_providers
from runtime.store.service.phone_providers import credentials_context
from runtime.store.tenant_config import _action, _twilio, tenant_config
from runtime.tenant_lookup import async_lookup
from runtime.tenants import TenantConfig, TenantDirectory

if TYPE_CHECKING:
    from runtime.delivery import Pipeline
    from runtime.events import Channel
    from runtime.store.service import ServiceStore

__all__ = ["Trial", "TrialDirectory", "installed", "provider_trial", "tenant_trial"]

SAMPLE_CODE = "123456"
"""The code a test message carries."""


@dataclass(frozen=True)
class Trial:
    """The configuration one test message is sent with."""

    config: TenantConfig
    credentials: dict[str, str]


_current: contextvars.ContextVar[Trial | None] = contextvars.ContextVar("trial", default=None)


class TrialDirectory:
    """A :class:`TenantDirectory` that answers with the current task's :class:`Trial`."""

    def __init__(self, inner: TenantDirectory) -> None:
        self.inner = inner

    def get(self, tenant_id: str) -> TenantConfig:
        trial = _current.get()
        if trial is not None and trial.config.id == tenant_id:
            return trial.config
        return self.inner.get(tenant_id)

    async def aget(self, tenant_id: str) -> TenantConfig:
        """As :meth:`get`, with the inner directory's async lookup (it may load)."""
        trial = _current.get()
        if trial is not None and trial.config.id == tenant_id:
            return trial.config
        return await async_lookup(self.inner)(tenant_id)

    def credentials(self, tenant: TenantConfig) -> dict[str, str]:
        trial = _current.get()
        if trial is not None and tenant is trial.config:
            return dict(trial.credentials)
        return self.inner.credentials(tenant)

    def ids(self) -> list[str]:
        return self.inner.ids()


def installed(pipeline: Pipeline) -> None:
    """Wrap ``pipeline``'s directory in a :class:`TrialDirectory` (once)."""
    if not isinstance(pipeline.tenants, TrialDirectory):
        pipeline.tenants = TrialDirectory(pipeline.tenants)


def using(trial: Trial) -> contextvars.Token[Trial | None]:
    """Make ``trial`` what this task (and the tasks it starts) sees; reset with the token."""
    return _current.set(trial)


def reset(token: contextvars.Token[Trial | None]) -> None:
    _current.reset(token)


def tenant_trial(store: ServiceStore, tenant: str, channel: Channel) -> Trial:
    """The tenant's live configuration, with ``channel`` enabled (blocking)."""
    config, credentials = tenant_config(store, tenant)
    return Trial(
        config.model_copy(update={"message_types": config.message_types | {channel}}),
        credentials,
    )


def provider_trial(store: ServiceStore, tenant: str, provider_id: str, channel: Channel) -> Trial:
    """The tenant's configuration as if phone provider ``provider_id`` were its enabled one
    (blocking). No fallback: the test is of this provider, not of the default sender."""
    config, _ = tenant_config(store, tenant)
    row, secret = _provider_row(store, tenant, provider_id)
    if row["name"] == "custom":
        provider, settings, credentials = _action(store, tenant, "custom")
    else:
        tenant_row = store.tenants.get(tenant)
        configuration = json.loads(row["configuration"] or "{}")
        provider, settings, credentials = _twilio(
            store,
            tenant,
            tenant_row.settings,
            sid=configuration.get("sid"),
            sender=configuration.get("default_from"),
            service=configuration.get("mssid"),
            token=secret.get("auth_token"),
        )
    trial = config.model_copy(
        update={
            "provider": provider,
            "provider_settings": settings,
            "fallback": "never",
            "message_types": frozenset({channel}),
        }
    )
    return Trial(trial, credentials)


def _provider_row(store: ServiceStore, tenant: str, id: str) -> tuple[Any, dict[str, str]]:
    """The provider's row and its credentials, opened; NotFoundError for another tenant's."""
    with store.engine.connect() as conn:
        row = conn.execute(
            select(phone_providers).where(
                phone_providers.c.id == id, phone_providers.c.tenant == tenant
            )
        ).first()
    if row is None:
        raise NotFoundError("Phone provider has not been configured.")
    secret: dict[str, str] = {}
    if row.credentials_sealed:
        opened = store.keyring.open(row.credentials_sealed, credentials_context(tenant, id))
        secret = json.loads(opened)
    return row._mapping, secret
