"""Supervisor-side services behind every ``api.*`` call a sandboxed worker makes.

The worker is untrusted once tenant code has run, so nothing it sends is believed: the op name,
the params and every value in them are re-validated here and in :mod:`~runtime.sandbox.host.egress`
and :mod:`~runtime.sandbox.host.cache`. The tenant id always comes from the supervisor, never from
the worker. Refusals are :class:`~runtime.sandbox.host.refusals.ApiRefused` (their tree is in
:mod:`~runtime.sandbox.host.refusals`), whose message is shown to the tenant.

Every :class:`ApiRefused` leaves :meth:`SupervisorServices.handle` freshly built and raised
outside any ``except`` block: no ``__cause__``/``__context__`` carries a host exception (with
its frames and arguments) towards the tenant. Unexpected host errors are logged here, without
params (they hold secrets), and become a generic refusal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from runtime.sandbox.host.refusals import ApiRefused

if TYPE_CHECKING:
    from runtime.sandbox.host.cache import ActionCache
    from runtime.sandbox.host.context import InvocationContext
    from runtime.sandbox.host.egress import Egress

__all__ = ["OPS", "SupervisorServices"]

log = logging.getLogger(__name__)

OPS = frozenset({"http.request", "cache.get", "cache.set", "cache.delete"})
"""Every op a worker may ask for."""


_Handler = Callable[["InvocationContext", dict[str, Any]], Awaitable[Any]]


class SupervisorServices:
    """Dispatch a worker's ``api`` calls to egress and cache; one instance per supervisor."""

    def __init__(self, egress: Egress, cache: ActionCache) -> None:
        self._egress = egress
        self._cache = cache
        self._handlers: dict[str, _Handler] = {"http.request": self._http_request}

    async def handle(self, context: InvocationContext, op: str, params: dict[str, Any]) -> Any:
        """Serve ``op`` for ``context.tenant`` before ``context.deadline`` (both the pool's).

        ``api.cache`` is scoped to the context's tenant and trigger; HTTP requests draw on its
        budget. Returns plain JSON data; raises only :class:`ApiRefused` (a fresh one, no
        context).
        """
        tenant = context.tenant
        if type(tenant) is not str or not tenant:
            raise TypeError("tenant must be a non-empty str supplied by the supervisor")
        if type(op) is not str or op not in OPS:
            shown = op[:64] if type(op) is str else type(op).__name__
            raise ApiRefused(f"unknown api operation {shown!r}")
        if type(params) is not dict:
            raise ApiRefused(f"api.{op}: params must be an object")
        refusal: ApiRefused
        try:
            if op.startswith("cache."):
                return await self._cache_call(op, context, params)
            return await self._handlers[op](context, params)
        except ApiRefused as exc:
            refusal = type(exc)(exc.message, maybe_sent=exc.maybe_sent)
        except Exception as exc:
            # A bug or an unexpected host failure: log it here, show the tenant nothing of it.
            log.error(
                "sandbox api %s failed for tenant %s: %s",
                op,
                tenant,
                type(exc).__name__,
                exc_info=True,
            )
            refusal = ApiRefused(f"api.{op}: internal error")
        raise refusal

    async def aclose(self) -> None:
        """Release egress connections."""
        await self._egress.aclose()

    async def _http_request(self, context: InvocationContext, params: dict[str, Any]) -> Any:
        return await self._egress.request(
            context.tenant, params, deadline=context.deadline, budget=context.http_budget
        )

    async def _cache_call(self, op: str, context: InvocationContext, params: dict[str, Any]) -> Any:
        """``api.cache.get/set/delete`` in the namespace of the context's tenant and trigger."""
        tenant, trigger, deadline = context.tenant, context.trigger, context.deadline
        key = params.get("key")
        call: Awaitable[Any]
        if op == "cache.set":
            _only(params, op, {"key", "value", "ttl", "expires_at"})
            call = self._cache.set(
                tenant,
                key,
                params.get("value"),
                trigger=trigger,
                ttl=params.get("ttl"),
                expires_at=params.get("expires_at"),
            )
        elif op == "cache.get":
            _only(params, op, {"key"})
            call = self._cache.get(tenant, key, trigger=trigger)
        else:
            _only(params, op, {"key"})
            call = self._cache.delete(tenant, key, trigger=trigger)
        return await _within(deadline, op, call)


def _only(params: dict[str, Any], op: str, allowed: set[str]) -> None:
    """Refuse params the op does not know: a worker must not smuggle in e.g. ``tenant``."""
    for name in params:
        if type(name) is not str or name not in allowed:
            shown = name[:64] if type(name) is str else type(name).__name__
            raise ApiRefused(f"api.{op}: unknown parameter {shown!r}")


async def _within(deadline: float, op: str, call: Awaitable[Any]) -> Any:
    """Await ``call`` unless the invocation's deadline has passed (a Redis cache may block)."""
    remaining = deadline - time.monotonic()
    timed_out = False
    try:
        if remaining <= 0:
            timed_out = True
        else:
            async with asyncio.timeout(remaining):
                return await call
    except TimeoutError:
        timed_out = True
    finally:
        if timed_out and asyncio.iscoroutine(call):
            call.close()  # never started: avoid "coroutine was never awaited"
    raise ApiRefused(f"api.{op}: invocation deadline reached")
