"""The service's signals, wired in its lifespan: Prometheus counts of every report, the usage
triggers' counting and webhooks, and the sandbox's counts on ``/metrics``.

Reports reach both through the pipeline's ``after_send`` observers (an observer never changes a
delivery, and one that fails is logged and skipped), so the delivery path itself is untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from runtime import hookimpl, metrics
from runtime.errors import StoreUnavailableError
from runtime.events import DeliveryReport
from runtime.store.jobs import QueueFullError
from runtime.usage_triggers import KIND, Firing, TriggerWebhooks, UsageCounter, UsageTriggerStore
from runtime.usage_triggers.webhook import payload

if TYPE_CHECKING:
    from runtime.delivery import Pipeline
    from runtime.sandbox.host.runner import SandboxRunner
    from runtime.store.executor import StoreExecutor
    from runtime.store.service import ServiceStore

__all__ = ["Signals", "open_signals"]

log = logging.getLogger("runtime.signals")
_MAX_PENDING_WEBHOOKS = 100  # per tenant: at most 10 triggers x a few periods waiting


class _Observer:
    """The ``after_send`` observer: a dict update or two per report, on the loop."""

    def __init__(self, counter: UsageCounter) -> None:
        self._counter = counter

    @hookimpl
    def after_send(self, report: DeliveryReport) -> None:
        metrics.observe_report(report)
        self._counter.observe(report)


@dataclass
class Signals:
    counter: UsageCounter
    webhooks: TriggerWebhooks
    observer: _Observer
    pipeline: Pipeline

    async def aclose(self) -> None:
        self.pipeline.plugin_manager.unregister(self.observer)
        await self.counter.aclose()
        await self.webhooks.aclose()
        metrics.watch_sandbox(None)


async def open_signals(
    store: ServiceStore, executor: StoreExecutor, pipeline: Pipeline, runner: SandboxRunner
) -> Signals:
    """Start counting: register the observer and the webhook job, start the counter."""
    timeout = pipeline.settings.store_timeout
    run = partial(_run, executor, timeout)
    triggers = UsageTriggerStore(store.engine, store.keyring)
    webhooks = TriggerWebhooks(triggers, run, allow_hosts=pipeline.settings.outbound_hosts())

    async def fire(firing: Firing) -> None:
        try:
            queue = await pipeline.jobs.queue()
            await executor.run(
                partial(queue.enqueue, max_pending=_MAX_PENDING_WEBHOOKS),
                KIND,
                firing.tenant,
                payload(firing),
                timeout=timeout,
            )
        except (StoreUnavailableError, QueueFullError) as exc:
            log.error("usage trigger %s fired; its webhook not queued: %s", firing.trigger_id, exc)
            return
        pipeline.jobs.wake()

    counter = UsageCounter(triggers, run, fire)
    observer = _Observer(counter)
    pipeline.jobs.register(KIND, webhooks.run)
    pipeline.plugin_manager.register(observer, name="phone-actions-signals")
    metrics.watch_sandbox(runner.pool.stats)
    counter.start()
    return Signals(counter, webhooks, observer, pipeline)


async def _run(executor: StoreExecutor, budget: float, fn: Any, *args: Any) -> Any:
    return await executor.run(fn, *args, timeout=budget)
