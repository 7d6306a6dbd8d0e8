"""The checks every HTTP provider plugin must pass, run on each ``tests/providers/case_*``.

Each test drives the real plugin over real sockets against a local stub and asserts what the
pipeline relies on: the receipt, and for each failure its code, whether it may be retried and
whether the message may have been handed off (which forbids a fallback: no second code).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from runtime import PhoneMessageRequest
from runtime.errors import ProviderError
from runtime.http_provider import HttpProvider
from runtime.plugins import DEFAULT_PLUGINS
from tests.conftest import PipelineFactory
from tests.providers.harness import CODE, RECIPIENT, ProviderCase, all_cases, make_message
from tests.support.stub_server import StubServer, free_port

CASES = all_cases()


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def case(request: pytest.FixtureRequest) -> ProviderCase:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def provider(case: ProviderCase) -> AsyncIterator[HttpProvider]:
    made = case.make_provider()
    yield made
    await made.aclose()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


async def send(case: ProviderCase, provider: HttpProvider, base_url: str, **message: Any) -> Any:
    config = provider.config_model.model_validate(case.config(base_url))
    credentials = provider.credentials_model.model_validate(case.credentials)
    return await provider.send(make_message(**message), config, credentials)


async def failure(
    case: ProviderCase, provider: HttpProvider, base_url: str, **message: Any
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await send(case, provider, base_url, **message)
    error = caught.value
    text = str(error)
    for secret in (CODE, *case.credentials.values()):
        assert secret not in text, f"{secret!r} leaked into {text!r}"
    return error


def test_every_plugin_has_a_case() -> None:
    names = {case.name for case in CASES}
    assert {"mitto"} <= names


@pytest.mark.parametrize("channel", ["sms", "voice"])
async def test_success_per_channel(
    case: ProviderCase, provider: HttpProvider, stub: StubServer, channel: str
) -> None:
    if channel not in case.ok:
        pytest.skip(f"{case.name} does not carry {channel}")
    answer = case.ok[channel]
    stub.respond(answer.status, answer.body, answer.headers)
    receipt = await send(case, provider, stub.url, channel=channel)
    assert receipt.provider == case.name
    assert receipt.message_id == case.message_id
    assert len(stub.requests) == 1
    sent = stub.requests[0]
    assert sent.method == "POST"
    assert RECIPIENT.removeprefix("+") in sent.body.decode("utf-8", "replace")


async def test_an_unsupported_channel_is_a_configuration_error_and_sends_nothing(
    case: ProviderCase, provider: HttpProvider, stub: StubServer
) -> None:
    if case.unsupported_channel is None:
        pytest.skip(f"{case.name} carries every channel")
    error = await failure(case, provider, stub.url, channel=case.unsupported_channel)
    assert error.code == "configuration_error"
    assert not error.handed_off
    assert stub.requests == []


async def test_a_permanent_refusal_is_not_retryable_and_not_handed_off(
    case: ProviderCase, provider: HttpProvider, stub: StubServer
) -> None:
    stub.respond(case.permanent.status, case.permanent.body, case.permanent.headers)
    error = await failure(case, provider, stub.url)
    assert error.code == case.permanent_code
    assert (error.retryable, error.handed_off) == (False, False)


@pytest.mark.parametrize(
    ("status", "retryable", "handed_off"),
    [(429, True, False), (503, True, False), (500, True, True), (502, True, True)],
)
async def test_http_statuses(
    case: ProviderCase,
    provider: HttpProvider,
    stub: StubServer,
    status: int,
    retryable: bool,
    handed_off: bool,
) -> None:
    stub.respond(status, "<html>gateway says no</html>", {"Content-Type": "text/html"})
    error = await failure(case, provider, stub.url)
    assert (error.retryable, error.handed_off, error.status) == (retryable, handed_off, status)


async def test_a_timeout_after_sending_counts_as_handed_off(
    case: ProviderCase, provider: HttpProvider, stub: StubServer
) -> None:
    stub.hang()
    error = await failure(case, provider, stub.url, timeout=0.3)
    assert error.code == "timeout"
    assert error.handed_off
    assert len(stub.requests) == 1


async def test_a_refused_connection_is_not_handed_off(
    case: ProviderCase, provider: HttpProvider
) -> None:
    error = await failure(case, provider, f"http://127.0.0.1:{free_port()}")
    assert error.code == "connection_error"
    assert (error.retryable, error.handed_off) == (True, False)


async def test_a_malformed_success_counts_as_handed_off(
    case: ProviderCase, provider: HttpProvider, stub: StubServer
) -> None:
    ok = case.ok["sms"]
    stub.respond(ok.status, b"{not json", {"Content-Type": "application/json"})
    error = await failure(case, provider, stub.url)
    assert error.code == "malformed_response"
    assert (error.retryable, error.handed_off) == (False, True)


def tenant(case: ProviderCase, base_url: str) -> dict[str, Any]:
    return {
        "acme": {
            "friendly_name": "Acme",
            "message_types": ["sms", "voice"],
            "provider": case.name,
            "provider_settings": case.config(base_url),
            "credentials_env": {name: f"CRED_{name.upper()}" for name in case.credentials},
        }
    }


@pytest.mark.parametrize(("status", "falls_back"), [(503, True), (500, False)])
async def test_fallback_rule_through_the_pipeline(
    case: ProviderCase,
    make_pipeline: PipelineFactory,
    stub: StubServer,
    status: int,
    falls_back: bool,
) -> None:
    """503 refused the message: the outbox delivers. 500 may have come after the provider
    queued it: no fallback, so the user never gets two codes."""
    stub.respond(status, "down")
    plugins: tuple[object, ...] = ()
    if case.plugin not in DEFAULT_PLUGINS:
        plugins = (__import__(case.plugin, fromlist=["_"]),)
    environ = {f"CRED_{name.upper()}": value for name, value in case.credentials.items()}
    pipeline = make_pipeline(tenant(case, stub.url), environ=environ, plugins=plugins)
    report = await pipeline.deliver(
        PhoneMessageRequest.create(tenant="acme", recipient=RECIPIENT, code=CODE)
    )
    assert len(stub.requests) == 1
    if falls_back:
        # The outbox only stores the message: reported "stored", never "delivered".
        assert (report.status, report.path) == ("stored", [case.name, "outbox"])
    else:
        assert (report.status, report.path) == ("failed", [case.name])
    assert report.attempts[0].provider == case.name
