"""Tenants for the pipeline from the service's database: :class:`StoreTenantDirectory`.

The pipeline calls :meth:`get` and :meth:`credentials` on the event loop, so they read an
in-memory snapshot and never touch the database. The snapshot is refreshed by a task
(:meth:`start`) that asks for every tenant's config version at most every ``refresh`` seconds,
on the store executor, and rebuilds only the tenants whose version changed: a deploy on
another node is live here within ``refresh`` plus one query. A node that just wrote calls
:meth:`refresh` to see its own change at once. A database that does not answer keeps the
last snapshot (deliveries go on with it) and is logged once per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass, field

from runtime.errors import ConfigurationError, StoreUnavailableError, UnknownTenantError
from runtime.store.db import DATABASE_ERRORS, engine_timeout, unavailable
from runtime.store.executor import StoreExecutor
from runtime.store.service import ServiceStore
from runtime.store.tenant_config import tenant_config
from runtime.tenants import TenantConfig

__all__ = ["StoreTenantDirectory"]

log = logging.getLogger("runtime.store.directory")


@dataclass(frozen=True)
class _Entry:
    version: int
    config: TenantConfig | None
    credentials: dict[str, str] = field(default_factory=dict)
    error: ConfigurationError | None = None


class StoreTenantDirectory:
    """Implements :class:`runtime.tenants.TenantDirectory` from a :class:`ServiceStore`."""

    def __init__(
        self,
        store: ServiceStore,
        *,
        refresh: float = 0.5,
        executor: StoreExecutor | None = None,
        timeout: float | None = None,
    ) -> None:
        self.store = store
        self.refresh_interval = refresh
        self._own_executor = executor is None
        self._executor = executor or StoreExecutor(max_workers=1, max_pending=4)
        self._timeout = timeout if timeout is not None else engine_timeout(store.engine) * 4
        self._entries: dict[str, _Entry] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._changed: asyncio.Condition | None = None  # made on the loop, by next_change
        self._loading = threading.Lock()  # one load at a time: a late one never undoes a newer

    # -- the TenantDirectory protocol (non-blocking) --------------------------------------

    def get(self, tenant_id: str) -> TenantConfig:
        entry = self._entries.get(tenant_id)
        if entry is None:
            raise UnknownTenantError(f"no tenant {tenant_id!r} in the database")
        if entry.error is not None:
            raise entry.error
        assert entry.config is not None
        return entry.config

    def credentials(self, tenant: TenantConfig) -> dict[str, str]:
        entry = self._entries.get(tenant.id)
        return dict(entry.credentials) if entry is not None else {}

    def ids(self) -> list[str]:
        return sorted(self._entries)

    # -- keeping the snapshot fresh -------------------------------------------------------

    def load(self) -> list[str]:
        """Bring the snapshot up to date (blocking: a store thread, or sync code). Returns
        the tenants that changed."""
        with self._loading:
            return self._load()

    def _load(self) -> list[str]:
        try:
            versions = self.store.tenants.versions()
        except DATABASE_ERRORS as exc:
            raise unavailable(self.store.engine, "reading tenant versions", exc) from None
        changed = [t for t, v in versions.items() if self._version(t) != v]
        entries = dict(self._entries)
        for gone in set(entries) - set(versions):
            del entries[gone]
        for tenant in changed:
            entries[tenant] = self._build(tenant, versions[tenant])
        self._entries = entries  # one assignment: readers see the old or the new snapshot
        return changed

    def _version(self, tenant: str) -> int | None:
        entry = self._entries.get(tenant)
        return None if entry is None else entry.version

    def _build(self, tenant: str, version: int) -> _Entry:
        try:
            config, credentials = tenant_config(self.store, tenant)
        except DATABASE_ERRORS as exc:
            raise unavailable(self.store.engine, f"reading tenant {tenant!r}", exc) from None
        except ConfigurationError as exc:  # kept: get() raises it, other tenants carry on
            log.warning("tenant %s cannot be used: %s", tenant, exc)
            return _Entry(version, None, error=exc)
        return _Entry(version, config, credentials)

    async def refresh(self) -> list[str]:
        """:meth:`load` on the store executor; the tenants that changed."""
        changed = await self._executor.run(self.load, timeout=self._timeout)
        if changed and self._changed is not None:
            async with self._changed:
                self._changed.notify_all()
        return changed

    async def next_change(self) -> None:
        """Return once a refresh has picked up a change (for tests and watchers)."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            await self._changed.wait()

    async def start(self) -> None:
        """Load the snapshot (a database that does not answer raises
        :class:`StoreUnavailableError`), then keep it fresh in the background."""
        await self.refresh()
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="tenant-directory-refresh")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)  # a period, not a synchronisation
            try:
                await self.refresh()
            except StoreUnavailableError as exc:
                if not self._failing:
                    log.warning("tenant directory keeps its last snapshot: %s", exc)
                self._failing = True
            else:
                if self._failing:
                    log.warning("tenant directory reads the database again")
                self._failing = False

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own_executor:
            self._executor.shutdown(wait=False)
