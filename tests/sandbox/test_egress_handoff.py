"""Hand-off is a fact of the wire: a failure after the request reached a server is handed off.

Real HTTP servers on 127.0.0.1 answer what breaks a call after it was written: a redirect the
egress refuses, a redirect loop, the budget running out on a redirect hop, a 2xx whose body
cannot be decoded. Each is asserted at the egress (``maybe_sent``) and through the pipeline
with a fallback-always tenant (no second code: nothing in the outbox). Refusals before any
byte was written stay not handed off, so those still fall back.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime import PhoneMessageRequest
from runtime.sandbox.guest.api_stub import _with_json as with_json
from runtime.sandbox.host.egress import (
    Egress,
    EgressDenied,
    EgressFailed,
    EgressPolicy,
    InvocationBudget,
)
from runtime.sandbox.host.refusals import ApiRefused
from runtime.sandbox.shared.contract import SandboxLimits
from tests.conftest import PipelineFactory
from tests.support.stub_server import RecordedRequest, StubServer, free_port

ROOT = Path(__file__).resolve().parents[2]


def call(url: str, method: str = "POST", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"headers": None, "params": None, "json": None, "data": None}
    return {**base, "timeout": None, "method": method, "url": url, **fields}


async def failure(egress: Egress, params: dict[str, Any], budget: int = 20) -> ApiRefused:
    with pytest.raises(ApiRefused) as info:
        await egress.request(
            "acme", params, deadline=time.monotonic() + 10, budget=InvocationBudget(budget)
        )
    return info.value


@pytest.fixture
def fake() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


@pytest.fixture
def other() -> Iterator[StubServer]:
    """A second server (another origin, allow-listed too)."""
    with StubServer() as server:
        server.respond(200, {"id": "other"})
        yield server


def netloc(server: StubServer) -> str:
    return server.url.removeprefix("http://")


@pytest.fixture
async def egress(fake: StubServer, other: StubServer) -> AsyncIterator[Egress]:
    hosts = frozenset({netloc(fake), netloc(other)})
    egress = Egress(EgressPolicy(allow_http_hosts=hosts), SandboxLimits())
    yield egress
    await egress.aclose()


# Each scenario: how the provider fake answers, and the message the action's ApiError carries.
def see_other_port(_: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
    return 303, b"", {"Location": f"http://127.0.0.1:{free_port()}/status"}


def temporary_loop(_: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
    return 307, b"", {"Location": "/send"}


def corrupt_gzip(_: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
    return 200, b"this is not gzip", {"Content-Encoding": "gzip", "Content-Type": "text/plain"}


def brotli(_: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
    return 202, b"\x8b\x03\x80accepted\x03", {"Content-Encoding": "br"}


def redirect_once(request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
    if request.path == "/send":
        return 302, b"", {"Location": "/sent"}
    return 200, {"id": "x"}, {}


def zone_id_host(_: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
    # an IPv6 literal whose zone id is a non-ASCII byte: once broke the egress after sending
    return 302, b"", {"Location": "https://[::1%\xad]/"}


SCENARIOS = {
    "303-to-another-port": (see_other_port, "not allowed"),
    "302-to-a-zone-id-host": (zone_id_host, "not a valid absolute URL"),
    "307-loop": (temporary_loop, "too many redirects"),
    "corrupt-gzip-2xx": (corrupt_gzip, "not valid gzip"),
    "unsupported-encoding-2xx": (brotli, "unsupported response content-encoding"),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_a_failure_after_the_request_was_answered_is_handed_off(
    egress: Egress, fake: StubServer, scenario: str
) -> None:
    answer, message = SCENARIOS[scenario]
    fake.respond_with(answer)
    error = await failure(egress, call(f"{fake.url}/send", json={"to": "+447911123456"}))
    assert message in error.message
    assert error.maybe_sent is True
    assert fake.requests[0].body == b'{"to":"+447911123456"}'  # it did reach the server


async def test_the_budget_running_out_on_a_redirect_hop_is_handed_off(
    egress: Egress, fake: StubServer
) -> None:
    fake.respond_with(redirect_once)
    error = await failure(egress, call(f"{fake.url}/send", json={}), budget=1)
    assert isinstance(error, EgressDenied)
    assert "request limit" in error.message
    assert error.maybe_sent is True
    assert [r.path for r in fake.requests] == ["/send"]


async def test_a_4xx_whose_body_cannot_be_read_is_not_handed_off(
    egress: Egress, fake: StubServer
) -> None:
    fake.respond(400, b"not gzip", {"Content-Encoding": "gzip"})
    error = await failure(egress, call(f"{fake.url}/send", json={}))
    assert "gzip" in error.message
    assert error.maybe_sent is False


async def test_refusals_before_anything_was_written_are_not_handed_off(egress: Egress) -> None:
    refused_port = free_port()  # nothing listens: connect is refused
    policy = EgressPolicy(allow_http_hosts=frozenset({f"127.0.0.1:{refused_port}"}))
    local = Egress(policy, SandboxLimits())
    try:
        cases = [
            (local, f"http://127.0.0.1:{refused_port}/send", "could not connect"),
            (egress, "https://10.0.0.1/send", "not a public address"),
            (egress, "http://example.com/send", "plain http is not allowed"),
        ]
        for where, url, message in cases:
            error = await failure(where, call(url, json={}))
            assert message in error.message
            assert error.maybe_sent is False, url
    finally:
        await local.aclose()


class SurprisingTransport(httpx.AsyncBaseTransport):
    """Writes the request (as httpcore reports it), then fails in a way no one planned for."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.extensions["trace"]("http11.send_request_headers.started", {})
        raise RuntimeError("a library's surprise")


async def test_an_unexpected_error_after_writing_is_handed_off() -> None:
    policy = EgressPolicy(allow_http_hosts=frozenset({"127.0.0.1:9"}))
    egress = Egress(policy, SandboxLimits(), transport_factory=SurprisingTransport)
    try:
        error = await failure(egress, call("http://127.0.0.1:9/send", json={}))
    finally:
        await egress.aclose()
    assert isinstance(error, EgressFailed)
    assert error.message == "request to 127.0.0.1 failed"
    assert error.maybe_sent is True


async def test_a_host_that_is_not_ascii_is_refused_as_invalid_before_sending(
    egress: Egress,
) -> None:
    error = await failure(egress, call("https://[::1%\xad]/send", json={}))
    assert isinstance(error, EgressDenied)
    assert "not a valid absolute URL" in error.message
    assert error.maybe_sent is False


async def test_no_answer_after_writing_is_handed_off(egress: Egress, fake: StubServer) -> None:
    fake.close_connection()
    error = await failure(egress, call(f"{fake.url}/send", json={}))
    assert isinstance(error, EgressFailed)
    assert error.maybe_sent is True


# -- redirects never carry a body to another origin -------------------------------------------


@pytest.mark.parametrize("status", [307, 308])
async def test_a_body_is_never_redirected_to_another_origin(
    egress: Egress, fake: StubServer, other: StubServer, status: int
) -> None:
    fake.respond(status, b"", {"Location": f"{other.url}/collect"})
    error = await failure(egress, call(f"{fake.url}/send", json={"code": "246810"}))
    assert isinstance(error, EgressDenied)
    assert "another origin" in error.message
    assert error.maybe_sent is True  # the first request was written and answered
    assert other.requests == []


@pytest.mark.parametrize("status", [307, 308])
async def test_same_origin_307_308_keep_method_and_body(
    egress: Egress, fake: StubServer, status: int
) -> None:
    def answer(request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        if request.path == "/send":
            return status, b"", {"Location": "/v2/send"}
        return 201, {"id": "m1"}, {}

    fake.respond_with(answer)
    result = with_json(
        await egress.request(
            "acme",
            call(f"{fake.url}/send", json={"a": 1}),
            deadline=time.monotonic() + 10,
            budget=InvocationBudget(5),
        )
    )
    assert result["json"] == {"id": "m1"}
    moved = fake.requests[1]
    assert (moved.method, moved.path, moved.body) == ("POST", "/v2/send", b'{"a":1}')


async def test_303_to_another_origin_is_a_get_without_body(
    egress: Egress, fake: StubServer, other: StubServer
) -> None:
    fake.respond(303, b"", {"Location": f"{other.url}/status"})
    result = with_json(
        await egress.request(
            "acme",
            call(f"{fake.url}/send", json={"a": 1}),
            deadline=time.monotonic() + 10,
            budget=InvocationBudget(5),
        )
    )
    assert result["json"] == {"id": "other"}
    [seen] = other.requests
    assert (seen.method, seen.body) == ("GET", b"")


async def test_a_hop_answered_before_the_final_4xx_marks_the_invocation_handed_off(
    egress: Egress, fake: StubServer
) -> None:
    """``POST`` accepted with a ``303`` to a status URL, whose ``GET`` answers ``401``: the
    call ends normally with a 4xx, but the message reached the provider on the first hop."""

    def answer(request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        if request.method == "POST":
            return 303, b"", {"Location": "/messages/123"}
        return 401, {"error": "unauthorized"}, {}

    fake.respond_with(answer)
    budget = InvocationBudget(5)
    result = with_json(
        await egress.request(
            "acme",
            call(f"{fake.url}/send", json={"a": 1}),
            deadline=time.monotonic() + 10,
            budget=budget,
        )
    )
    assert result["status"] == 401
    assert budget.reached


async def test_a_plain_4xx_answer_does_not_mark_the_invocation_handed_off(
    egress: Egress, fake: StubServer
) -> None:
    fake.respond(401, {"error": "unauthorized"})
    budget = InvocationBudget(5)
    result = with_json(
        await egress.request(
            "acme", call(f"{fake.url}/send"), deadline=time.monotonic() + 10, budget=budget
        )
    )
    assert (result["status"], budget.reached) == (401, False)


# -- through the pipeline: no fallback, no second code ----------------------------------------

SEND = """
def on_execute_send_phone_message(event, api):
    mo = event.message_options
    for _ in range(int(event.secrets.get("WASTE") or "0")):
        api.http.get(event.secrets.SMS_URL + "/nothing")
    try:
        r = api.http.post(event.secrets.SMS_URL + "/send", json={"to": mo.recipient})
    except ApiError as error:
        raise Exception("could not send: " + str(error))  # its own error, after catching
    return {"message_id": (r["json"] or {}).get("id")}
"""


def pipeline(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer, **secrets: str
) -> Any:
    script = tmp_path / "action.py"
    script.write_text(SEND)
    names = {"SMS_URL": "ACME_URL"} | {name: f"ACME_{name}" for name in secrets}
    return make_pipeline(
        {
            "acme": {
                "message_types": ["sms"],
                "provider": "phone-message-hook",
                "provider_settings": {"script": str(script)},
                "credentials_env": names,
                "fallback": "always",
            }
        },
        environ={"ACME_URL": fake.url} | {f"ACME_{k}": v for k, v in secrets.items()},
        sandbox_allow_http_hosts=[netloc(fake)],
        attempt_timeout=5.0,
    )


def request() -> PhoneMessageRequest:
    return PhoneMessageRequest.create(tenant="acme", recipient="+447911123456", code="246810")


def outbox(built: Any) -> list[Any]:
    return list(built.providers.get("outbox").messages("acme"))


def assert_handed_off_without_fallback(report: Any, built: Any, words: str) -> None:
    assert report.path == ["phone-message-hook"], report.model_dump_json()
    assert (report.status, report.reason) == ("failed", "handed_off")
    [attempt] = report.attempts
    assert attempt.handed_off is True
    assert words in (attempt.error or "")
    assert outbox(built) == []  # the default sender sent nothing: one code only


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_pipeline_never_falls_back_after_a_failure_on_the_wire(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer, scenario: str
) -> None:
    answer, words = SCENARIOS[scenario]
    fake.respond_with(answer)
    built = pipeline(make_pipeline, tmp_path, fake)
    report = await built.deliver(request())
    assert_handed_off_without_fallback(report, built, words)


async def test_pipeline_never_falls_back_when_the_budget_runs_out_on_a_redirect_hop(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    def answer(request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        if request.path == "/nothing":
            return 404, b"", {}
        return redirect_once(request)

    fake.respond_with(answer)
    limit = SandboxLimits().max_http_requests
    built = pipeline(make_pipeline, tmp_path, fake, WASTE=str(limit - 1))
    report = await built.deliver(request())
    assert_handed_off_without_fallback(report, built, "request limit")
    assert [r.path for r in fake.requests][-1] == "/send"


async def test_pipeline_never_falls_back_after_a_303_whose_status_url_answers_4xx(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    """The action sees only the final 401 and raises; the POST with the code was accepted."""

    def answer(request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        if request.method == "POST":
            return 303, b"", {"Location": "/messages/123"}
        return 401, {"error": "unauthorized"}, {}

    fake.respond_with(answer)
    script = tmp_path / "action.py"
    script.write_text(
        "def on_execute_send_phone_message(event, api):\n"
        "    r = api.http.post(event.secrets.SMS_URL + '/send', json={'to': 1})\n"
        "    if r['status'] >= 400:\n"
        "        raise Exception('provider said ' + str(r['status']))\n"
    )
    built = make_pipeline(
        {
            "acme": {
                "message_types": ["sms"],
                "provider": "phone-message-hook",
                "provider_settings": {"script": str(script)},
                "credentials_env": {"SMS_URL": "ACME_URL"},
                "fallback": "always",
            }
        },
        environ={"ACME_URL": fake.url},
        sandbox_allow_http_hosts=[netloc(fake)],
        attempt_timeout=5.0,
    )
    report = await built.deliver(request())
    assert_handed_off_without_fallback(report, built, "provider said 401")


async def test_pipeline_still_falls_back_when_nothing_was_written(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    built = pipeline(make_pipeline, tmp_path, fake)
    fake.stop()  # connection refused: the provider never saw the message
    report = await built.deliver(request())
    assert report.path == ["phone-message-hook", "outbox"]
    assert report.attempts[0].handed_off is False
    assert len(outbox(built)) == 1


# -- the sample custom-phone-provider action -------------------------------------------------


Answer = tuple[int, Any, dict[str, str]]


def cpaas(send: Callable[[RecordedRequest], Answer]) -> Callable[[RecordedRequest], Answer]:
    def answer(request: RecordedRequest) -> Answer:
        if request.path == "/oauth2/token":
            return 200, {"access_token": "tok-1", "expires_in": 3600}, {}
        return send(request)

    return answer


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_sample_custom_provider_does_not_double_send(
    make_pipeline: PipelineFactory, fake: StubServer, scenario: str
) -> None:
    """The sample catches every ApiError and asks to retry: after a failure on the wire that
    retry must not become a second code from the default sender."""
    fake.respond_with(cpaas(SCENARIOS[scenario][0]))
    secrets = {
        "PROVIDER_BASE_URL": fake.url,
        "PROVIDER_CLIENT_ID": "client-1",
        "PROVIDER_CLIENT_SECRET": "secret-1",
    }
    built = make_pipeline(
        {
            "acme": {
                "message_types": ["sms"],
                "provider": "custom",
                "provider_settings": {"script": str(ROOT / "tenant_actions/custom_provider.py")},
                "credentials_env": {name: f"ACME_{name}" for name in secrets},
                "fallback": "always",
            }
        },
        environ={f"ACME_{name}": value for name, value in secrets.items()},
        sandbox_allow_http_hosts=[netloc(fake)],
        attempt_timeout=5.0,
    )
    report = await built.deliver(request())
    assert report.path == ["custom"], report.model_dump_json()
    [attempt] = report.attempts
    assert (attempt.error_code, attempt.handed_off) == ("notification_retry", True)
    assert outbox(built) == []
    assert [r.path for r in fake.requests][:2] == ["/oauth2/token", "/v1/messages"]
