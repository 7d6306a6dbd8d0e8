"""The one typed context of an invocation, built by the pool and read by the host services.

Why: the pool, the invocation and the services used to pass an untyped ``scope`` dict and
adapters between them, so what an ``api`` call is judged against (whose call, which trigger,
until when, how many requests left) was spread over keyword arguments and dict keys. Every
field here comes from the supervisor, never from the worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from runtime.sandbox.host.egress import InvocationBudget
from runtime.sandbox.shared.contract import SandboxLimits, Trigger

__all__ = ["InvocationContext"]


@dataclass(frozen=True, slots=True)
class InvocationContext:
    """What the host knows about one invocation while it runs.

    ``deadline`` is its end in ``time.monotonic()`` seconds (queueing included);
    ``http_budget`` is the invocation's own count of HTTP requests, which redirect hops draw
    on too; ``api.cache`` is scoped to ``tenant`` and ``trigger``.
    """

    tenant: str
    trigger: Trigger
    limits: SandboxLimits
    deadline: float
    http_budget: InvocationBudget

    @classmethod
    def start(cls, tenant: str, trigger: Trigger, limits: SandboxLimits) -> InvocationContext:
        """The context of an invocation starting now, with ``limits.timeout`` to run."""
        return cls(
            tenant=tenant,
            trigger=trigger,
            limits=limits,
            deadline=time.monotonic() + limits.timeout,
            http_budget=InvocationBudget.for_limits(limits),
        )

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it passed)."""
        return self.deadline - time.monotonic()
