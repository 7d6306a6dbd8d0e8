"""What a route needs, opened once by the app's lifespan: :class:`Services`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import Depends, Request

from runtime.errors import StoreUnavailableError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from runtime.delivery import Pipeline
    from runtime.sandbox.host.runner import SandboxRunner
    from runtime.settings import Settings
    from runtime.store.crypto import Keyring
    from runtime.store.directory import StoreTenantDirectory
    from runtime.store.executor import StoreExecutor
    from runtime.store.service import ServiceStore

__all__ = ["Services", "ServicesDep", "services"]

T = TypeVar("T")


@dataclass
class Services:
    """The service's parts. Store calls block: routes make them with :meth:`call`, which runs
    them on the store's own bounded executor with the store timeout (never on the loop)."""

    settings: Settings
    engine: Engine
    keyring: Keyring
    store: ServiceStore
    executor: StoreExecutor
    runner: SandboxRunner
    pipeline: Pipeline
    directory: StoreTenantDirectory

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the store executor; StoreUnavailableError (503) after the timeout."""
        return await self.executor.run(fn, *args, timeout=self.settings.store_timeout)

    def submit(
        self, fn: Callable[..., T], *args: Any, late: Callable[[T], None] | None = None
    ) -> asyncio.Future[T]:
        """:meth:`call` as a future queued now; ``late`` (on the loop) gets the value of a call
        that completed after its deadline or its caller's cancellation: a store call whose
        effect must be accounted for (a code check) is, even when its caller was told 503."""
        try:
            return self.executor.submit(fn, *args, timeout=self.settings.store_timeout, late=late)
        except StoreUnavailableError as exc:  # refused at once: the future's error, as a timeout
            refused: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            refused.set_exception(exc)
            return refused


async def services(request: Request) -> Services:
    """Dependency: the app's :class:`Services` (async, so FastAPI keeps it on the loop
    instead of sending it to a thread)."""
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]
"""A route parameter typed ``svc: ServicesDep`` receives the app's :class:`Services`."""
