"""Clickatell: the One API request, and its error-code table (docs/providers/clickatell.md).

There is no public OpenAPI spec for the One API, so the answers are fixtures built from the
shapes Clickatell's reference and the clickatell-api crate document (see ``case_clickatell``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from plugins.clickatell import (
    ERRORS,
    ClickatellConfig,
    ClickatellCredentials,
    ClickatellProvider,
)
from runtime.errors import ProviderError
from tests.providers.case_clickatell import (
    API_KEY,
    MESSAGE_ID,
    TO,
    accepted,
    message_error,
    request_error,
)
from tests.providers.harness import CODE, make_message
from tests.support.stub_server import StubServer

CREDENTIALS = ClickatellCredentials(api_key=API_KEY)


@pytest.fixture
async def provider() -> AsyncIterator[ClickatellProvider]:
    made = ClickatellProvider()
    yield made
    await made.aclose()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


async def send(provider: ClickatellProvider, stub: StubServer, **settings: Any) -> Any:
    return await provider.send(
        make_message(), ClickatellConfig(base_url=stub.url, **settings), CREDENTIALS
    )


async def failure(provider: ClickatellProvider, stub: StubServer) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await send(provider, stub)
    assert CODE not in str(caught.value)
    assert API_KEY not in str(caught.value)
    return caught.value


async def test_the_request_carries_the_raw_key_and_one_sms(
    provider: ClickatellProvider, stub: StubServer
) -> None:
    stub.respond(202, accepted())
    receipt = await send(provider, stub)
    assert (receipt.provider, receipt.message_id) == ("clickatell", MESSAGE_ID)
    (sent,) = stub.requests
    assert (sent.method, sent.path) == ("POST", "/v1/message")
    assert sent.headers["Authorization"] == API_KEY  # no scheme: Clickatell wants the raw key
    assert sent.headers["Content-Type"] == "application/json"
    assert orjson.loads(sent.body) == {
        "messages": [{"channel": "sms", "to": TO, "content": f"{CODE} is your code"}]
    }


async def test_the_sender_goes_in_from_without_plus(
    provider: ClickatellProvider, stub: StubServer
) -> None:
    stub.respond(202, accepted())
    await send(provider, stub, sender="+15550100")
    (message,) = orjson.loads(stub.requests[0].body)["messages"]
    assert message["from"] == "15550100"
    assert message["to"] == TO


def test_settings_default_to_the_production_api_and_check_the_sender() -> None:
    assert ClickatellConfig().base_url == "https://platform.clickatell.com"
    assert ClickatellConfig().sender is None
    with pytest.raises(ValueError, match="sender"):
        ClickatellConfig(sender="Acme Corp Ltd")  # a space
    with pytest.raises(ValueError, match="sender"):
        ClickatellConfig(sender="1234567890123456")  # 16 characters


def test_the_permanent_table_is_the_one_in_providers_md() -> None:
    documented = {1, 2, 3, 7, 20, 21, 23, 24, 25, 26, 27, 28, 44, 45, 100}
    assert {str(code) for code in documented} == ERRORS.permanent
    assert ERRORS.retryable == {"19"}  # internal error, please retry
    assert ERRORS.throttled == {"43"}  # rate limit


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable", "handed_off"),
    [
        # the request was not taken: a top-level error, by code
        (401, request_error(1, "Invalid or missing integration API Key"), "1", False, False),
        (401, request_error(2, "Account is not active"), "2", False, False),
        (401, request_error(3, "Integration is not active"), "3", False, False),
        (401, request_error(7, "Originating IP address is not approved"), "7", False, False),
        (402, request_error(20, "Insufficient account balance"), "20", False, False),
        (400, request_error(21, "Payload data is malformed"), "21", False, False),
        (429, request_error(43, "Rate limit"), "43", True, False),
        # a 5xx with a rate-limit code still says the message was refused
        (500, request_error(43, "Rate limit"), "43", True, False),
        (500, request_error(19, "Internal error, please retry"), "19", True, True),
        (503, request_error(19, "Internal error, please retry"), "19", True, False),
        # the message was not taken: a per-message error, by code
        (400, message_error(23, "Invalid or missing parameter: to ."), "23", False, False),
        (400, message_error(24, "Maximum message content size exceeded"), "24", False, False),
        (400, message_error(25, "Invalid recipient address"), "25", False, False),
        (400, message_error(26, "Recipient opted out"), "26", False, False),
        (400, message_error(27, "Recipient not available on channel"), "27", False, False),
        (400, message_error(28, "Recipient not available on sandbox"), "28", False, False),
        (400, message_error(44, "From number is suspended"), "44", False, False),
        (400, message_error(45, "From number is not related to integration"), "45", False, False),
        (400, message_error(100, "Maximum message parts exceeded"), "100", False, False),
        (207, message_error(19, "Internal error, please retry"), "19", True, False),
        (207, message_error(26, "Recipient opted out"), "26", False, False),
        # codes outside the table: by HTTP status
        (400, message_error(22, "Maximum messages per request exceeded"), "22", False, False),
        (500, request_error(18, "Internal error"), "18", True, True),
    ],
)
async def test_error_codes(
    provider: ClickatellProvider,
    stub: StubServer,
    status: int,
    body: dict[str, Any],
    code: str,
    retryable: bool,
    handed_off: bool,
) -> None:
    stub.respond(status, body)
    error = await failure(provider, stub)
    assert (error.code, error.retryable, error.handed_off, error.status) == (
        code,
        retryable,
        handed_off,
        status,
    )
    assert "Clickatell" in error.message
    description = (body.get("error") or body["messages"][0]["error"])["description"]
    assert description in error.message


async def test_not_accepted_without_an_error_is_a_refusal(
    provider: ClickatellProvider, stub: StubServer
) -> None:
    stub.respond(202, {"messages": [{"accepted": False, "to": TO}], "error": None})
    error = await failure(provider, stub)
    assert (error.code, error.retryable, error.handed_off) == ("202", False, False)


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"accepted": True, "to": TO}], "error": None},  # no apiMessageId
        {"messages": [{"apiMessageId": "", "accepted": True, "to": TO}], "error": None},
        {"messages": [], "error": None},
        {"error": None},
        ["not", "an", "object"],
    ],
    ids=["no-id", "empty-id", "no-messages", "nothing", "list"],
)
async def test_an_accepted_answer_without_a_message_id_is_malformed(
    provider: ClickatellProvider, stub: StubServer, body: Any
) -> None:
    """Clickatell took the request (2xx) but says nothing usable: handed off, never resent."""
    stub.respond(202, body)
    error = await failure(provider, stub)
    assert (error.code, error.retryable, error.handed_off) == ("malformed_response", False, True)


async def test_an_error_status_without_a_body_is_classified_by_status(
    provider: ClickatellProvider, stub: StubServer
) -> None:
    stub.respond(401)
    error = await failure(provider, stub)
    assert (error.code, error.retryable, error.handed_off) == ("401", False, False)
