"""The service's configuration in the database: blocking repositories, one per resource.

Async code calls them through :class:`~runtime.store.StoreExecutor` (``executor.run(fn,
*args, timeout=settings.store_timeout)``). Every change bumps the tenant's config version in
the same transaction; another tenant's object is :class:`~runtime.errors.NotFoundError`;
secrets and credentials are sealed with the :class:`~runtime.store.crypto.Keyring` and no row
ever carries their values. docs/service.md describes the whole.
"""

from __future__ import annotations

from sqlalchemy import Engine

from runtime.store.crypto import Keyring
from runtime.store.db import describe
from runtime.store.service.actions import ActionRepository
from runtime.store.service.bindings import BindingRepository
from runtime.store.service.guardian import GuardianRepository
from runtime.store.service.phone_limits import PhoneLimitsRepository
from runtime.store.service.phone_providers import PhoneProviderRepository
from runtime.store.service.phone_templates import PhoneTemplateRepository
from runtime.store.service.rows import ActionRow, BindingRow, TenantRow, VersionRow
from runtime.store.service.tenants import TenantRepository

__all__ = [
    "ActionRepository",
    "ActionRow",
    "BindingRepository",
    "BindingRow",
    "GuardianRepository",
    "PhoneLimitsRepository",
    "PhoneProviderRepository",
    "PhoneTemplateRepository",
    "ServiceStore",
    "TenantRepository",
    "TenantRow",
    "VersionRow",
]


class ServiceStore:
    """Every repository of the service on one engine and keyring."""

    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self.engine = engine
        self.keyring = keyring
        self.database = describe(engine)  # StoreExecutor names it in its errors
        self.tenants = TenantRepository(engine, keyring)
        self.actions = ActionRepository(engine, keyring)
        self.bindings = BindingRepository(engine, keyring, self.actions)
        self.guardian = GuardianRepository(engine, keyring)
        self.phone_providers = PhoneProviderRepository(engine, keyring)
        self.phone_templates = PhoneTemplateRepository(engine, keyring)
        self.phone_limits = PhoneLimitsRepository(engine, keyring)
