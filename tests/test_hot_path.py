"""The keyless pipeline's hot path: what it costs per message, counted rather than timed.

Each event-loop iteration is an ``epoll`` syscall and a pass over the ready queue; wrappers
that do nothing for a tenant are not run for it. Counts, unlike timings, do not flake on a
loaded 2-core CI machine.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Generator
from typing import Any

import pytest

from runtime import Receipt, hookimpl
from runtime.attempt_hooks import AttemptContext, only_for
from tests.conftest import PipelineFactory
from tests.fake_providers import ProvidersPlugin, ScriptedProvider
from tests.test_delivery import request, tenant

Wrapper = Generator[None, Receipt, Receipt | None]


class OnlyAcme:
    """A wrapper for tenant ``acme`` only, noting each attempt it wrapped."""

    def __init__(self) -> None:
        self.wrapped: list[str] = []

    @hookimpl(wrapper=True)
    @only_for(lambda tenant: tenant.id == "acme")
    def around_attempt(self, attempt: AttemptContext) -> Wrapper:
        self.wrapped.append(attempt.tenant.id)
        return (yield)


async def test_a_wrapper_marked_only_for_some_tenants_wraps_only_theirs(
    make_pipeline: PipelineFactory,
) -> None:
    """The recorder's case: tenants it does not apply to are delivered without it."""
    watcher = OnlyAcme()
    primary = ScriptedProvider("primary")
    tenants = {**tenant(), **{"other": tenant()["acme"]}}
    pipeline = make_pipeline(tenants, plugins=(ProvidersPlugin(primary), watcher))
    for name in ("other", "acme", "other"):
        done = await pipeline.deliver(request(tenant=name))
        assert done.status == "delivered", done
    assert watcher.wrapped == ["acme"]
    assert len(primary.sent) == 3


class _Counting(selectors.DefaultSelector):
    """Counts ``select`` calls: one per event-loop iteration."""

    calls = 0

    def select(self, timeout: float | None = None) -> Any:
        type(self).calls += 1
        return super().select(timeout)


async def _iterations(coroutine: Any) -> int:
    """How many loop iterations ``coroutine`` takes on a fresh loop (run in a thread)."""

    def run() -> int:
        _Counting.calls = 0
        loop = asyncio.SelectorEventLoop(_Counting())
        try:
            loop.run_until_complete(coroutine)
            return _Counting.calls
        finally:
            loop.close()

    return await asyncio.to_thread(run)


async def test_a_keyless_delivery_costs_three_loop_iterations(
    make_pipeline: PipelineFactory,
) -> None:
    """Start the delivery task, the log writer's wake, the caller resuming: three, whatever
    the provider awaits. (It was five: ``asyncio.shield`` and the task's own wake after the
    write each cost one.) The log event is on disk when the report comes back."""
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),))

    async def deliver(times: int) -> None:
        for _ in range(times):
            assert (await pipeline.deliver(request())).status == "delivered"

    once, four_times = await _iterations(deliver(1)), await _iterations(deliver(4))
    assert four_times - once == 3 * 3  # the run's own start and end cancel out
    assert primary.sent, "the provider was reached"
    assert pipeline.log_sink is not None
    lines = pipeline.log_sink.path.read_text().splitlines()
    assert len(lines) >= 2


@pytest.mark.parametrize("wrapped", [False, True])
async def test_a_caller_cancelled_while_sending_still_gets_its_delivery_logged(
    make_pipeline: PipelineFactory, wrapped: bool
) -> None:
    """The caller's future is a plain one now (no shield): cancelling it leaves the started
    delivery running to its report and log event, with or without a wrapper around it."""
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(_message: Any) -> str:
        started.set()
        await release.wait()
        return "sent-1"

    primary = ScriptedProvider("primary", slow)
    plugins: tuple[object, ...] = (ProvidersPlugin(primary),)
    if wrapped:
        plugins += (OnlyAcme(),)
    pipeline = make_pipeline(tenant(), plugins=plugins)
    caller = asyncio.create_task(pipeline.deliver(request()))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    release.set()
    await pipeline.drain()
    assert pipeline.log_sink is not None
    pipeline.flush_logs()
    text = pipeline.log_sink.path.read_text()
    assert "sent-1" in text
