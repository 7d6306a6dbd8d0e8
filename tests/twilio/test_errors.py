"""How each failure becomes a ProviderError: code, retryable and, above all, handed_off.

Every test talks to a real local server (StubServer) through the real SDK and aiohttp, so the
exceptions classified are the ones production would see.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pydantic import ValidationError
from twilio.base.exceptions import TwilioRestException, TwilioServiceException

import plugins.twilio.provider as provider_module
from plugins.twilio import TwilioConfig, TwilioCredentials, TwilioProvider
from plugins.twilio.http import SILENT_LOGGER, RewritingAsyncHttpClient
from runtime.errors import ProviderError
from tests.support.stub_server import RecordedRequest, StubServer, free_port
from tests.twilio.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CODE,
    MESSAGE_SID,
    MESSAGING_SERVICE_SID,
    call_resource,
    make_config,
    make_message,
    message_resource,
)

SECRETS = (CODE, AUTH_TOKEN, base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode())


def twilio_error(code: int, status: int, message: str = "refused") -> dict[str, Any]:
    """Twilio's classic error body."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


async def send_failing(
    provider: TwilioProvider,
    credentials: TwilioCredentials,
    base_url: str,
    **message_fields: Any,
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(**message_fields), make_config(base_url), credentials)
    error = caught.value
    for secret in SECRETS:
        assert secret not in str(error)
    return error


# --- Twilio refused the request: nothing was sent, so a fallback is safe -----------------


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_ambiguous_server_errors_count_as_handed_off(
    stub: StubServer, provider: TwilioProvider, credentials: TwilioCredentials, status: int
) -> None:
    """A 500/502/504 may come after Twilio (or a gateway) queued the message: no fallback."""
    stub.respond(status, twilio_error(20500, status, "Internal Server Error"))

    error = await send_failing(provider, credentials, stub.url)

    assert (error.retryable, error.handed_off, error.status) == (True, True, status)


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable"),
    [
        (400, twilio_error(21211, 400, "The 'To' number is not valid"), "21211", False),
        (400, twilio_error(21408, 400, "Permission to send to this region"), "21408", False),
        (
            400,
            twilio_error(21610, 400, "Attempt to send to unsubscribed recipient"),
            "21610",
            False,
        ),
        (400, twilio_error(21614, 400, "'To' number is not a valid mobile number"), "21614", False),
        (401, twilio_error(20003, 401, "Authenticate"), "20003", False),
        (404, twilio_error(20404, 404, "The requested resource was not found"), "20404", False),
        (429, twilio_error(20429, 429, "Too Many Requests"), "20429", True),
        (503, "<html>Service Unavailable</html>", "503", True),
        (400, {"message": "no code in this one"}, "400", False),
        (418, b"\xff\xfe not text", "418", False),
    ],
    ids=[
        "21211",
        "21408",
        "21610",
        "21614",
        "20003",
        "20404",
        "20429",
        "503-html",
        "400-no-code",
        "418-binary",
    ],
)
async def test_error_answers_are_refusals(
    stub: StubServer,
    provider: TwilioProvider,
    credentials: TwilioCredentials,
    status: int,
    body: Any,
    code: str,
    retryable: bool,
) -> None:
    stub.respond(status, body)

    error = await send_failing(provider, credentials, stub.url)

    assert (error.code, error.retryable, error.handed_off, error.status) == (
        code,
        retryable,
        False,
        status,
    )
    assert isinstance(error.__cause__, TwilioRestException)
    assert len(stub.requests) == 1  # never retried


def problem(code: int, status: int) -> dict[str, Any]:
    """An RFC 9457 problem body, which the SDK raises as TwilioServiceException."""
    return {
        "type": f"https://www.twilio.com/docs/errors/{code}",
        "title": "Request refused",
        "status": status,
        "code": code,
        "detail": "see the docs",
    }


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(429, 20429, True), (400, 21211, False), (503, 20503, True)],
)
async def test_rfc_9457_problem_answers_are_refusals(
    stub: StubServer,
    provider: TwilioProvider,
    credentials: TwilioCredentials,
    status: int,
    code: int,
    retryable: bool,
) -> None:
    stub.respond(status, problem(code, status), {"Content-Type": "application/problem+json"})

    error = await send_failing(provider, credentials, stub.url)

    assert isinstance(error.__cause__, TwilioServiceException)
    assert (error.code, error.retryable, error.handed_off, error.status) == (
        str(code),
        retryable,
        False,
        status,
    )
    assert "Request refused - see the docs" in error.message


# --- No connection: nothing was sent -------------------------------------------------------


async def test_connection_refused_is_not_a_hand_off(
    provider: TwilioProvider, credentials: TwilioCredentials
) -> None:
    error = await send_failing(provider, credentials, f"http://127.0.0.1:{free_port()}")

    assert (error.code, error.retryable, error.handed_off) == ("connection_error", True, False)


@contextmanager
def unaccepting_port() -> Iterator[int]:
    """A listening port whose accept queue is full: Linux drops new SYNs, so connects hang."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        for _ in range(16):
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            filler.connect_ex(("127.0.0.1", port))
            _, writable, _ = select.select([], [filler], [], 0)
            if not writable:  # this one's SYN was dropped: the queue is full
                yield port
                return
        pytest.skip("could not fill the accept queue on this system")
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping SYNs")
async def test_connect_timeout_is_not_a_hand_off(
    provider: TwilioProvider, credentials: TwilioCredentials
) -> None:
    with unaccepting_port() as port:
        started = time.perf_counter()
        error = await send_failing(provider, credentials, f"http://127.0.0.1:{port}", timeout=2.0)

    assert (error.code, error.retryable, error.handed_off) == ("connect_timeout", True, False)
    # Connecting gets half the budget (1 s): it gave up before the total of 2 s, with a second
    # to spare for a loaded CI machine (the code above says which timer fired).
    assert time.perf_counter() - started < 2.0


# --- The request was sent: Twilio may have accepted it, never fall back ------------------


async def test_no_answer_in_time_is_a_hand_off(
    stub: StubServer, provider: TwilioProvider, credentials: TwilioCredentials
) -> None:
    stub.hang()

    started = time.perf_counter()
    error = await send_failing(provider, credentials, stub.url, timeout=0.3)
    elapsed = time.perf_counter() - started

    assert (error.code, error.retryable, error.handed_off) == ("timeout", True, True)
    # The message's own 0.3 s budget, not aiohttp's default (300 s); generous for a loaded machine.
    assert 0.25 <= elapsed < 5.0
    assert [request.form["Body"] for request in stub.requests] == [[f"{CODE} is your code"]]


async def test_connection_dropped_after_sending_is_a_hand_off(
    stub: StubServer, provider: TwilioProvider, credentials: TwilioCredentials
) -> None:
    stub.close_connection()

    error = await send_failing(provider, credentials, stub.url)

    assert (error.code, error.retryable, error.handed_off) == ("disconnected", True, True)
    assert len(stub.requests) == 1


@pytest.mark.parametrize(
    "body",
    ["this is not JSON", '{"sid": "SM', "", {}, {"status": "queued"}, [], "null"],
    ids=["text", "truncated", "empty", "empty-object", "no-sid", "list", "null"],
)
async def test_a_2xx_answer_without_a_readable_sid_is_a_hand_off(
    stub: StubServer, provider: TwilioProvider, credentials: TwilioCredentials, body: Any
) -> None:
    stub.respond(201, body, {"Content-Type": "application/json"})

    error = await send_failing(provider, credentials, stub.url)

    assert (error.code, error.retryable, error.handed_off) == ("malformed_response", False, True)


async def test_each_concurrent_send_keeps_its_own_time_budget(
    stub: StubServer, provider: TwilioProvider, credentials: TwilioCredentials
) -> None:
    """Two sends share one pooled session; the slow one's budget must not leak to the other."""
    release = threading.Event()
    slow_recipient = "+14155550123"

    def answer(request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        if request.form["To"] == [slow_recipient]:
            release.wait()
        return 201, message_resource(), {}

    stub.respond_with(answer)
    config = make_config(stub.url)
    try:
        slow, fast = await asyncio.gather(
            provider.send(make_message(recipient=slow_recipient, timeout=0.3), config, credentials),
            provider.send(make_message(timeout=5.0), config, credentials),
            return_exceptions=True,
        )
    finally:
        release.set()

    assert isinstance(slow, ProviderError)
    assert slow.code == "timeout"
    assert not isinstance(fast, BaseException)
    assert fast.message_id == MESSAGE_SID


# --- Checked before any request ------------------------------------------------------------


async def test_voice_without_from_number_is_a_configuration_error(
    stub: StubServer, provider: TwilioProvider, credentials: TwilioCredentials
) -> None:
    config = TwilioConfig(messaging_service_sid=MESSAGING_SERVICE_SID, base_url=stub.url)

    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(channel="voice"), config, credentials)

    error = caught.value
    assert (error.code, error.retryable, error.handed_off) == ("configuration_error", False, False)
    assert "from_number" in error.message
    assert stub.requests == []


async def test_invalid_credentials_are_reported_without_their_values(
    stub: StubServer, provider: TwilioProvider
) -> None:
    credentials = {"account_sid": "not-a-sid", "auth_token": AUTH_TOKEN}

    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(), make_config(stub.url), credentials)

    assert caught.value.code == "configuration_error"
    assert "account_sid" in caught.value.message
    assert AUTH_TOKEN not in str(caught.value)
    assert "not-a-sid" not in str(caught.value)
    assert stub.requests == []


async def test_config_and_credentials_may_be_plain_mappings(
    stub: StubServer, provider: TwilioProvider
) -> None:
    stub.respond(201, message_resource())
    config = {"from_number": "+1 415 555 0100", "base_url": stub.url}
    credentials = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}

    receipt = await provider.send(make_message(), config, credentials)

    assert receipt.message_id == MESSAGE_SID
    assert stub.requests[0].form["From"] == ["+14155550100"]


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({}, "from_number"),
        ({"from_number": "12"}, "from_number"),
        ({"messaging_service_sid": "MG123"}, "messaging_service_sid"),
        ({"from_number": "+14155550100", "base_url": "ftp://api.twilio.com"}, "base_url"),
        ({"from_number": "+14155550100", "base_url": "https://proxy.example/twilio"}, "base_url"),
        ({"from_number": "+14155550100", "status_callback": "not a url"}, "status_callback"),
        ({"from_number": "+14155550100", "auth_token": "x"}, "auth_token"),
    ],
    ids=["no-sender", "bad-number", "bad-mg", "ftp", "base-path", "callback", "extra"],
)
def test_config_rejects(fields: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TwilioConfig(**fields)

    assert complaint in str(caught.value)


def test_config_normalises() -> None:
    config = TwilioConfig(from_number="+1 (415) 555-0100", base_url="http://127.0.0.1:4010/")

    assert config.from_number == "+14155550100"
    assert config.base_url == "http://127.0.0.1:4010"
    assert TwilioConfig(messaging_service_sid=MESSAGING_SERVICE_SID).base_url == (
        "https://api.twilio.com"
    )


def test_credentials_hide_the_token() -> None:
    credentials = TwilioCredentials(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)

    assert AUTH_TOKEN not in repr(credentials)
    assert AUTH_TOKEN not in str(credentials.model_dump())
    with pytest.raises(ValidationError):
        TwilioCredentials(account_sid="AC123", auth_token=AUTH_TOKEN)


async def test_no_time_left_sends_nothing(
    stub: StubServer, provider: TwilioProvider, credentials: TwilioCredentials
) -> None:
    with pytest.raises(ValueError, match="timeout must be positive"):
        make_message(timeout=0.0)  # the message refuses it; a forged one still cannot pass
    spent = make_message()
    object.__setattr__(spent, "timeout", 0.0)
    with pytest.raises(ProviderError) as caught:
        await provider.send(spent, make_config(stub.url), credentials)

    assert (caught.value.code, caught.value.handed_off) == ("timeout", False)
    assert stub.requests == []


# --- Secrets stay out of logs and errors ---------------------------------------------------


async def test_nothing_logs_the_code_or_the_token(
    stub: StubServer,
    provider: TwilioProvider,
    credentials: TwilioCredentials,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Capture every record any logger handles at DEBUG, propagating or not, during sends."""
    seen: list[logging.LogRecord] = []
    handle = logging.Logger.handle

    def spy(self: logging.Logger, record: logging.LogRecord) -> Any:
        seen.append(record)
        return handle(self, record)

    monkeypatch.setattr(logging.Logger, "handle", spy)
    caplog.set_level(logging.DEBUG)
    for name in ("twilio", "twilio.http_client", "twilio.async_http_client", "aiohttp", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    quiet = logging.getLogger("tests.twilio.canary")
    quiet.propagate = False
    quiet.debug("canary")  # proves that the spy sees even non-propagating loggers

    def echo(request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        if request.path.endswith("/Calls.json"):
            return 201, call_resource(), {}
        body = request.form["Body"][0]
        if request.form["To"] == ["+14155550123"]:  # a refusal that quotes the message
            return 400, twilio_error(21617, 400, f"Body too long: {body}"), {}
        return 201, message_resource(body=body), {}

    stub.respond_with(echo)
    config = make_config(stub.url)
    await provider.send(make_message(), config, credentials)
    await provider.send(make_message(channel="voice"), config, credentials)
    refused = await send_failing(provider, credentials, stub.url, recipient="+14155550123")
    stub.hang()
    await send_failing(provider, credentials, stub.url, timeout=0.3)

    assert CODE in stub.requests[2].form["Body"][0]  # the server did see it...
    assert refused.code == "21617"
    assert "******" in refused.message  # ...the error does not
    assert any(record.getMessage() == "canary" for record in seen)
    logged = "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''}" for record in seen
    )
    for secret in SECRETS:
        assert secret not in logged
        assert secret not in caplog.text
    assert not SILENT_LOGGER.isEnabledFor(logging.CRITICAL)


# --- Pooled sessions -----------------------------------------------------------------------


async def test_one_session_per_base_url_and_aclose_closes_them(
    provider: TwilioProvider,
    credentials: TwilioCredentials,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[RewritingAsyncHttpClient] = []

    class Recording(RewritingAsyncHttpClient):
        def __init__(self, base_url: str, **kwargs: Any) -> None:
            super().__init__(base_url, **kwargs)
            created.append(self)

    monkeypatch.setattr(provider_module, "RewritingAsyncHttpClient", Recording)
    other = TwilioCredentials(account_sid="AC" + "cd" * 16, auth_token="another-token")
    with StubServer() as first, StubServer() as second:
        first.respond(201, message_resource())
        second.respond(201, message_resource())
        for server, account in [(first, credentials), (first, other), (second, credentials)]:
            await provider.send(make_message(), make_config(server.url), account)
        await provider.send(make_message(), make_config(first.url), credentials)

        assert sorted(client.base_url for client in created) == sorted([first.url, second.url])
        assert not any(client.closed for client in created)
        await provider.aclose()
        assert all(client.closed for client in created)

        receipt = await provider.send(make_message(), make_config(first.url), credentials)
        assert receipt.message_id == MESSAGE_SID  # a send after aclose opens a new session
        assert len(created) == 3
    users = [request.headers["Authorization"] for request in first.requests]
    assert len(set(users)) == 2  # each account kept its own credentials on the shared session
