"""``around_attempt``: plugins wrap every provider attempt, observe it, and never change it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator
from typing import Any

import pytest

from runtime import PluginError, ProviderError, Receipt, hookimpl
from runtime.attempt_hooks import AttemptContext
from runtime.events import DeliveryReport
from runtime.http import HttpObserver, HttpRequest, HttpResponse
from runtime.plugins import get_plugin_manager
from runtime.provider_kit import HttpProvider
from runtime.providers import PhoneMessage
from tests.conftest import PipelineFactory
from tests.fake_providers import NoSettings, ProvidersPlugin, ScriptedProvider
from tests.test_delivery import fail, request, tenant

Wrapper = Generator[None, Receipt, Receipt | None]


class Watcher:
    """A wrapper that notes what it saw before and after each attempt, and each report."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool, str]] = []
        self.reports: list[tuple[str, list[str]]] = []

    @hookimpl(wrapper=True)
    def around_attempt(self, attempt: AttemptContext) -> Wrapper:
        name = attempt.provider.name
        self.seen.append(("before", name, attempt.fallback, ""))
        if len(self.seen) == 1:
            attempt.delivery.on_report(self.report)
        try:
            receipt = yield
        except BaseException as exc:
            self.seen.append(("after", name, attempt.fallback, type(exc).__name__))
            raise
        self.seen.append(("after", name, attempt.fallback, receipt.message_id or ""))
        return receipt

    def report(self, report: DeliveryReport) -> None:
        self.reports.append((report.status, [a.provider for a in report.attempts]))


async def test_a_wrapper_sees_each_attempt_its_outcome_and_the_final_report(
    make_pipeline: PipelineFactory,
) -> None:
    """The primary fails without hand-off, the default sender stores it: two attempts, one
    report, the same delivery context across both."""
    watcher = Watcher()
    primary = ScriptedProvider("primary", fail("busy", retryable=True, handed_off=False))
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary), watcher))
    done = await pipeline.deliver(request())
    assert done.status == "stored"
    assert [(w, p, f) for w, p, f, _ in watcher.seen] == [
        ("before", "primary", False),
        ("after", "primary", False),
        ("before", "outbox", True),
        ("after", "outbox", True),
    ]
    assert watcher.seen[1][3] == "ProviderError"
    assert watcher.seen[3][3] == done.attempts[1].message_id
    assert watcher.reports == [("stored", ["primary", "outbox"])]


async def test_a_wrapper_that_raises_changes_nothing(
    make_pipeline: PipelineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Before the send: the wrapper is left out, the code still goes once. After it: the
    receipt stands. Whatever a wrapper returns or swallows, the report is the provider's."""

    class Broken:
        @hookimpl(wrapper=True)
        def around_attempt(self, attempt: AttemptContext) -> Wrapper:
            if attempt.message.recipient.endswith("1"):
                raise RuntimeError(f"before, code {attempt.message.code}")
            yield
            raise RuntimeError(f"after, code {attempt.message.code}")

    class Swallower:
        @hookimpl(wrapper=True)
        def around_attempt(self, attempt: AttemptContext) -> Wrapper:
            try:
                yield
            except ProviderError:
                return Receipt(provider="nobody", message_id="made-up")
            return None

    ok = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(ok), Broken(), Swallower()))
    with caplog.at_level(logging.ERROR, logger="runtime.delivery"):
        first = await pipeline.deliver(request(recipient="+14155552671"))
        second = await pipeline.deliver(request(recipient="+14155552672"))
    assert (first.status, second.status) == ("delivered", "delivered")
    assert [a.message_id for a in (*first.attempts, *second.attempts)] == [
        "primary-1",
        "primary-2",
    ]
    assert len(ok.sent) == 2
    logged = caplog.text
    assert "before, code" in logged
    assert "after, code" in logged
    assert "123456" not in logged  # the code is masked out of what is logged

    refusing = ScriptedProvider("primary", fail("21211", retryable=False, handed_off=False))
    other = make_pipeline(
        tenant(fallback="never"), plugins=(ProvidersPlugin(refusing), Swallower())
    )
    refused = await other.deliver(request())
    assert (refused.status, refused.attempts[0].error_code) == ("failed", "21211")


async def test_a_timed_out_attempt_is_thrown_into_the_wrapper(
    make_pipeline: PipelineFactory,
) -> None:
    """A provider that overruns its budget is cancelled by the pipeline's timer: the wrapper
    sees the cancellation, and the report says timeout (handed off, no fallback)."""
    watcher = Watcher()
    forever = asyncio.Event()  # never set: the send waits until the timer cancels it

    async def hang(_message: PhoneMessage) -> None:
        await forever.wait()

    slow = ScriptedProvider("primary", hang)
    pipeline = make_pipeline(
        tenant(), plugins=(ProvidersPlugin(slow), watcher), attempt_timeout=0.2
    )
    done = await pipeline.deliver(request())
    assert (done.status, done.attempts[0].error_code) == ("failed", "timeout")
    assert watcher.seen[-1][0] == "after"
    assert watcher.seen[-1][3] in ("CancelledError", "TimeoutError")


def test_around_attempt_must_be_a_generator_wrapper() -> None:
    class Plain:
        @hookimpl
        def around_attempt(self, attempt: Any) -> None:
            return None

    class OldStyle:
        @hookimpl(hookwrapper=True)
        def around_attempt(self, attempt: Any) -> Any:
            yield

    for plugin in (Plain(), OldStyle()):
        with pytest.raises(PluginError, match="around_attempt must be a generator"):
            get_plugin_manager(plugins=[plugin], load_entrypoints=False)


class Recorder:
    """An HTTP observer that answers every request itself and keeps what it saw."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def answer(self, request: HttpRequest) -> HttpResponse | None:
        return HttpResponse(200, {"content-type": "application/json"}, b'{"id": "seen-1"}')

    def record(
        self,
        request: HttpRequest,
        response: HttpResponse | None,
        error: BaseException | None,
        seconds: float,
    ) -> None:
        self.seen.append(request.url)


class Example(HttpProvider[NoSettings, NoSettings]):
    """A kit provider pointed at a port nothing listens on: only an observer can answer."""

    name = "example"
    label = "Example"
    channels = frozenset({"sms"})
    config_model = NoSettings
    credentials_model = NoSettings

    def build_request(
        self, message: PhoneMessage, config: NoSettings, credentials: NoSettings
    ) -> HttpRequest:
        return HttpRequest.json("http://127.0.0.1:9/messages", {"to": message.recipient})

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        return Receipt(provider=self.name, message_id=response.json()["id"])


async def test_the_observer_a_wrapper_sets_reaches_the_provider_s_http(
    make_pipeline: PipelineFactory,
) -> None:
    """Passed explicitly: send(..., observer=) then PooledHttp.send(..., observer=)."""
    observer = Recorder()

    class Observing:
        @hookimpl(wrapper=True)
        def around_attempt(self, attempt: AttemptContext) -> Wrapper:
            attempt.observer = observer
            return (yield)

    example = Example()
    pipeline = make_pipeline(tenant("example"), plugins=(ProvidersPlugin(example), Observing()))
    done = await pipeline.deliver(request())
    assert (done.status, done.attempts[0].message_id) == ("delivered", "seen-1")
    assert observer.seen == ["http://127.0.0.1:9/messages"]
    observed: HttpObserver = observer  # the protocol it implements
    assert observed is observer


async def test_without_an_observer_the_provider_sends_on_its_own(
    make_pipeline: PipelineFactory,
) -> None:
    """No wrapper sets one: the request goes to the network (here: a refused port)."""
    example = Example()
    pipeline = make_pipeline(
        tenant("example", fallback="never"), plugins=(ProvidersPlugin(example),)
    )
    done = await pipeline.deliver(request())
    assert (done.status, done.attempts[0].error_code) == ("failed", "connection_error")
