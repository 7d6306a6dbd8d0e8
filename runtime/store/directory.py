"""Tenants for the pipeline from the service's database: :class:`StoreTenantDirectory`.

Tenants are loaded lazily, on first use, never all at once: a node with 100,000 tenants
starts at once and holds only those it serves. :meth:`aget` answers a cached tenant without
leaving the event loop; a miss waits for a batch load on the store executor (misses that
arrive together share one thread hop, and two callers of one tenant share one load).

Bounds: at most ``max_tenants`` tenants are held (least recently used leave first), unknown
ids are remembered for ``unknown_ttl`` seconds (at most ``max_unknown`` of them) so that a
stream of them does not turn into a stream of queries, and at most ``max_waiting`` tenants
wait for a load (more: :class:`StoreUnavailableError` at once).

Freshness: a task (:meth:`start`) polls the config versions of the held tenants only
(``SELECT id, version FROM tenants WHERE id IN (...)``, 500 ids a query) every ``refresh``
seconds, and reloads those that changed: a deploy on another node is live here within
``refresh`` plus one query. A node that just wrote calls :meth:`refresh` to see its change at
once. A database that does not answer keeps what is held (deliveries go on with it) and is
logged once per outage. A tenant whose config cannot be used (a secret sealed under another
master key) is held with its error: its deliveries fail with that one line, others are not
affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Sequence

from runtime.errors import ConfigurationError, StoreUnavailableError, UnknownTenantError
from runtime.store.db import DATABASE_ERRORS, engine_timeout, unavailable
from runtime.store.executor import StoreExecutor
from runtime.store.service import ServiceStore
from runtime.store.tenant_config import LoadedTenant, load_tenants
from runtime.tenants import TenantConfig

__all__ = ["StoreTenantDirectory"]

log = logging.getLogger("runtime.store.directory")

_BATCHES = 2  # batch loads in flight at once: the directory's executor has one thread
_ROUNDS = 3  # reloads a refresh tries before leaving a changed tenant to the next poll


class StoreTenantDirectory:
    """Implements :class:`runtime.tenants.TenantDirectory` (cached tenants only) and the
    async :meth:`aget` the pipeline uses (:mod:`runtime.tenant_lookup`)."""

    def __init__(
        self,
        store: ServiceStore,
        *,
        refresh: float = 0.5,
        executor: StoreExecutor | None = None,
        timeout: float | None = None,
        max_tenants: int = 10_000,
        unknown_ttl: float = 1.0,
        max_unknown: int = 1_000,
        max_waiting: int = 1_000,
        batch: int = 32,
    ) -> None:
        if min(max_tenants, max_unknown, max_waiting, batch) < 1:
            raise ValueError("max_tenants, max_unknown, max_waiting and batch must be at least 1")
        self.store = store
        self.refresh_interval = refresh
        self.max_tenants = max_tenants
        self.unknown_ttl = unknown_ttl
        self.max_unknown = max_unknown
        self.max_waiting = max_waiting
        self.batch = batch
        self.loaded = 0
        """Tenants read from the database so far (first uses and reloads)."""
        self._own_executor = executor is None
        self._executor = executor or StoreExecutor(max_workers=1, max_pending=4)
        # a lookup waits at most the store timeout, as every wait on the database does
        self._timeout = timeout if timeout is not None else engine_timeout(store.engine)
        self._entries: OrderedDict[str, LoadedTenant] = OrderedDict()  # LRU: oldest first
        self._unknown: OrderedDict[str, float] = OrderedDict()  # id -> loop time it expires
        self._waiting: dict[str, asyncio.Future[LoadedTenant | None]] = {}
        self._queued: list[str] = []  # waiting ids no batch has taken yet
        self._batches: set[asyncio.Task[None]] = set()
        self._flushing = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._failing = False
        self._changed: asyncio.Condition | None = None  # made on the loop, by next_change

    # -- the TenantDirectory protocol (non-blocking: what is held here) --------------------

    def get(self, tenant_id: str) -> TenantConfig:
        """A held tenant; :class:`UnknownTenantError` for one not held (:meth:`aget` loads)."""
        entry = self._entries.get(tenant_id)
        if entry is None:
            raise UnknownTenantError(f"tenant {tenant_id!r} is not loaded on this node")
        return _config(entry)

    def credentials(self, tenant: TenantConfig) -> dict[str, str]:
        entry = self._entries.get(tenant.id)
        return dict(entry.credentials) if entry is not None else {}

    def ids(self) -> list[str]:
        """The tenants held on this node (not every tenant of the database)."""
        return sorted(self._entries)

    # -- the async lookup -----------------------------------------------------------------

    async def aget(self, tenant_id: str) -> TenantConfig:
        """The tenant's config: a held one without awaiting anything, else loaded.

        :class:`UnknownTenantError` when the database has no such tenant,
        :class:`~runtime.errors.ConfigurationError` when its config cannot be used,
        :class:`StoreUnavailableError` when it cannot be read now.
        """
        entry = self._entries.get(tenant_id)
        if entry is not None:
            self._entries.move_to_end(tenant_id)
            return _config(entry)
        expires = self._unknown.get(tenant_id)
        if expires is not None:
            if expires > asyncio.get_running_loop().time():
                raise UnknownTenantError(f"no tenant {tenant_id!r} in the database")
            del self._unknown[tenant_id]
        found = await asyncio.shield(self._request(tenant_id))  # a cancelled caller: others wait
        if found is None:
            raise UnknownTenantError(f"no tenant {tenant_id!r} in the database")
        return _config(found)

    def _request(self, tenant_id: str) -> asyncio.Future[LoadedTenant | None]:
        """The load of ``tenant_id``: the one in progress, or a new one in the next batch."""
        waiting = self._waiting.get(tenant_id)
        if waiting is not None:
            return waiting
        if self._closed:
            raise StoreUnavailableError("the tenant directory is closed")
        if len(self._waiting) >= self.max_waiting:
            raise StoreUnavailableError(
                f"{len(self._waiting)} tenants already wait to be loaded "
                f"(limit {self.max_waiting}); refused at once"
            )
        future: asyncio.Future[LoadedTenant | None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)
        self._waiting[tenant_id] = future
        self._queued.append(tenant_id)
        if not self._flushing:  # misses of this loop iteration go out together
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flushing = False
        self._start_batches()

    def _start_batches(self) -> None:
        while self._queued and len(self._batches) < _BATCHES:
            ids, self._queued = self._queued[: self.batch], self._queued[self.batch :]
            task = asyncio.get_running_loop().create_task(self._load(ids), name="tenant-load")
            self._batches.add(task)
            task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._batches.discard(task)
        if self._queued and not self._closed:
            self._start_batches()

    async def _load(self, ids: list[str]) -> None:
        """One batch: read ``ids`` on the store executor, keep them, answer their waiters."""
        try:
            loaded = await self._executor.run(self._read, ids, timeout=self._timeout)
        except Exception as exc:  # StoreUnavailableError: each waiter gets it
            self._fail(ids, exc)
            return
        except asyncio.CancelledError:
            self._fail(ids, StoreUnavailableError("the tenant directory is closed"))
            raise
        self.loaded += len(loaded)
        for tenant in ids:
            self._keep(tenant, loaded.get(tenant))
            future = self._waiting.pop(tenant, None)
            if future is not None and not future.done():
                future.set_result(self._entries.get(tenant))

    def _fail(self, ids: list[str], exc: Exception) -> None:
        for tenant in ids:
            future = self._waiting.pop(tenant, None)
            if future is not None and not future.done():
                future.set_exception(exc)

    def _read(self, ids: list[str]) -> dict[str, LoadedTenant]:
        try:
            return load_tenants(self.store, ids)
        except DATABASE_ERRORS as exc:
            raise unavailable(self.store.engine, f"loading {len(ids)} tenant(s)", exc) from None

    def _keep(self, tenant: str, entry: LoadedTenant | None) -> None:
        """Hold ``entry`` (never over a newer one), or remember that ``tenant`` is unknown."""
        if entry is None:
            self._entries.pop(tenant, None)
            self._unknown[tenant] = asyncio.get_running_loop().time() + self.unknown_ttl
            self._unknown.move_to_end(tenant)
            while len(self._unknown) > self.max_unknown:
                self._unknown.popitem(last=False)
            return
        self._unknown.pop(tenant, None)
        held = self._entries.get(tenant)
        if held is not None and held.version > entry.version:
            return
        self._entries[tenant] = entry
        self._entries.move_to_end(tenant)
        while len(self._entries) > self.max_tenants:
            self._entries.popitem(last=False)

    # -- keeping the held tenants fresh ---------------------------------------------------

    async def refresh(self) -> list[str]:
        """Poll the versions of the held tenants; reload those that changed and drop those
        deleted. Returns the tenants that changed. :class:`StoreUnavailableError` when the
        database does not answer (what is held stays)."""
        held = list(self._entries)
        if not held:
            return []
        versions = await self._executor.run(self._versions, held, timeout=self._timeout)
        changed: list[str] = []
        for tenant in held:
            entry = self._entries.get(tenant)
            if entry is None:
                continue  # evicted meanwhile
            if tenant not in versions:
                del self._entries[tenant]  # deleted: the next use finds out
                changed.append(tenant)
            elif entry.version != versions[tenant]:
                changed.append(tenant)
        for _ in range(_ROUNDS):  # a load that started before the change may answer older
            stale = [
                t
                for t in changed
                if (e := self._entries.get(t)) is not None and e.version < versions[t]
            ]
            if not stale:
                break
            await asyncio.gather(*(asyncio.shield(self._request(t)) for t in stale))
        if changed and self._changed is not None:
            async with self._changed:
                self._changed.notify_all()
        return changed

    def _versions(self, ids: Sequence[str]) -> dict[str, int]:
        try:
            return self.store.tenants.versions_of(ids)
        except DATABASE_ERRORS as exc:
            raise unavailable(self.store.engine, "reading tenant versions", exc) from None

    async def next_change(self) -> None:
        """Return once a refresh has picked up a change (for tests and watchers)."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            await self._changed.wait()

    async def start(self) -> None:
        """Start polling the held tenants' versions (nothing is loaded here: no database
        call, so a start never waits for the database or for the number of tenants)."""
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="tenant-directory-refresh")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)  # a period, not a synchronisation
            try:
                await self.refresh()
            except StoreUnavailableError as exc:
                if not self._failing:
                    log.warning("tenant directory keeps the tenants it holds: %s", exc)
                self._failing = True
            else:
                if self._failing:
                    log.warning("tenant directory reads the database again")
                self._failing = False

    async def aclose(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._batches):
            task.cancel()
        for task in list(self._batches):
            with contextlib.suppress(BaseException):
                await task
        if self._own_executor:
            self._executor.shutdown(wait=False)


def _config(entry: LoadedTenant) -> TenantConfig:
    if entry.error is not None:  # a new exception each time: tracebacks never pile up
        raise ConfigurationError(str(entry.error))
    assert entry.config is not None
    return entry.config


def _retrieved(future: asyncio.Future[LoadedTenant | None]) -> None:
    """Mark a load's failure as seen: its callers may all have been cancelled."""
    if not future.cancelled():
        future.exception()
