"""One async way to find a tenant, whatever the directory: :func:`async_lookup`.

The TOML directory answers from memory (:meth:`TenantDirectory.get`); the database's
(:class:`runtime.store.directory.StoreTenantDirectory`) loads a tenant on first use, which
must not block the event loop, so it also has ``async def aget``. Callers on the loop ask
:func:`async_lookup` once per directory which one to call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from runtime.tenants import TenantConfig, TenantDirectory

__all__ = ["AsyncTenantDirectory", "Lookup", "async_lookup"]

Lookup = Callable[[str], Awaitable[TenantConfig]]
"""``await lookup(tenant_id)``: the tenant's config, or the directory's error."""


@runtime_checkable
class AsyncTenantDirectory(TenantDirectory, Protocol):
    """A directory that may have to load a tenant: ``aget`` does so without blocking."""

    async def aget(self, tenant_id: str) -> TenantConfig:
        """As :meth:`TenantDirectory.get`, loading the tenant if it is not held."""
        ...


def async_lookup(directory: TenantDirectory) -> Lookup:
    """``directory.aget`` when it has one, else its ``get`` wrapped in a coroutine."""
    if isinstance(directory, AsyncTenantDirectory):
        return directory.aget

    async def lookup(tenant_id: str) -> TenantConfig:
        return directory.get(tenant_id)

    return lookup
