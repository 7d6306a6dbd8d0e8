"""Infobip: request shapes and its error table, from fixtures built on Infobip's API reference.

No OpenAPI file for Infobip can be used here (its spec is served only by the live API), so
requests are checked field by field against the documented shapes, and answers are the
documented success and error bodies.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from plugins.infobip import (
    ERRORS,
    InfobipConfig,
    InfobipCredentials,
    InfobipProvider,
)
from runtime.errors import ProviderError
from runtime.tenants import TomlTenantDirectory
from tests.providers.case_infobip import (
    API_KEY,
    FROM_NUMBER,
    MESSAGE_ID,
    PENDING,
    SENDER,
    sms_answer,
    voice_answer,
)
from tests.providers.harness import CODE, make_message
from tests.support.stub_server import Body, StubServer

CREDENTIALS = InfobipCredentials(api_key=API_KEY)
DOC = Path(__file__).resolve().parents[2] / "docs" / "providers" / "infobip.md"


@pytest.fixture
async def provider() -> AsyncIterator[InfobipProvider]:
    made = InfobipProvider()
    yield made
    await made.aclose()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def settings(stub: StubServer, **fields: Any) -> InfobipConfig:
    values: dict[str, Any] = {"base_url": stub.url, "sender": SENDER, "from_number": FROM_NUMBER}
    values.update(fields)
    return InfobipConfig(**values)


async def failure(provider: InfobipProvider, config: Any, **message: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(**message), config, CREDENTIALS)
    assert API_KEY not in str(caught.value)
    assert CODE not in str(caught.value)
    return caught.value


# -- requests ------------------------------------------------------------------------------


async def test_sms_request(stub: StubServer, provider: InfobipProvider) -> None:
    stub.respond(200, sms_answer(PENDING))
    receipt = await provider.send(make_message(), settings(stub), CREDENTIALS)
    assert (receipt.provider, receipt.message_id, receipt.status) == (
        "infobip",
        MESSAGE_ID,
        "PENDING",
    )
    (sent,) = stub.requests
    assert (sent.method, sent.path) == ("POST", "/sms/3/messages")
    assert sent.headers["Authorization"] == f"App {API_KEY}"
    assert sent.headers["Content-Type"] == "application/json"
    assert orjson.loads(sent.body) == {
        "messages": [
            {
                "sender": SENDER,
                "destinations": [{"to": "447911123456"}],
                "content": {"text": f"{CODE} is your code"},
            }
        ]
    }


async def test_voice_request(stub: StubServer, provider: InfobipProvider) -> None:
    stub.respond(200, voice_answer(PENDING))
    receipt = await provider.send(
        make_message(channel="voice", locale="de_AT"), settings(stub), CREDENTIALS
    )
    assert receipt.message_id == MESSAGE_ID
    (sent,) = stub.requests
    assert (sent.method, sent.path) == ("POST", "/tts/3/advanced")
    assert sent.headers["Authorization"] == f"App {API_KEY}"
    assert orjson.loads(sent.body) == {
        "messages": [
            {
                "from": "41793026700",
                "destinations": [{"to": "447911123456"}],
                "text": "Your code is 7. 3. 5. 1. 9. 4.",
                "language": "de",
            }
        ]
    }


async def test_voice_options_are_sent_when_set(stub: StubServer, provider: InfobipProvider) -> None:
    stub.respond(200, voice_answer(PENDING))
    config = settings(
        stub, voice_name="Joanna", voice_gender="female", speech_rate=0.8, repeat_dtmf="1#"
    )
    await provider.send(make_message(channel="voice", locale="en-GB"), config, CREDENTIALS)
    (call,) = orjson.loads(stub.requests[0].body)["messages"]
    assert call["language"] == "en"
    assert call["voice"] == {"name": "Joanna", "gender": "female"}
    assert (call["speechRate"], call["repeatDtmf"]) == (0.8, "1#")


async def test_the_base_url_keeps_its_path_prefix(
    stub: StubServer, provider: InfobipProvider
) -> None:
    stub.respond(200, sms_answer(PENDING))
    await provider.send(make_message(), settings(stub, base_url=stub.url + "/proxy/"), CREDENTIALS)
    assert stub.requests[0].path == "/proxy/sms/3/messages"


# -- configuration -------------------------------------------------------------------------


async def test_base_url_is_required(stub: StubServer, provider: InfobipProvider) -> None:
    error = await failure(provider, {"sender": SENDER})
    assert error.code == "configuration_error"
    assert "base_url" in error.message
    assert not error.handed_off


def test_a_sender_or_a_from_number_is_required(stub: StubServer) -> None:
    with pytest.raises(ValueError, match="sender"):
        InfobipConfig(base_url=stub.url)


@pytest.mark.parametrize(
    ("channel", "missing_field", "present"),
    [("sms", "sender", {"from_number": FROM_NUMBER}), ("voice", "from_number", {"sender": SENDER})],
)
async def test_a_channel_without_its_sender_sends_nothing(
    stub: StubServer,
    provider: InfobipProvider,
    channel: str,
    missing_field: str,
    present: dict[str, str],
) -> None:
    error = await failure(provider, {"base_url": stub.url, **present}, channel=channel)
    assert error.code == "configuration_error"
    assert missing_field in error.message
    assert (error.retryable, error.handed_off) == (False, False)
    assert stub.requests == []


@pytest.mark.parametrize(
    "bad", [{"from_number": "41793026700"}, {"speech_rate": 3}, {"voice_gender": "robot"}]
)
def test_bad_settings_are_rejected(stub: StubServer, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        InfobipConfig(base_url=stub.url, sender=SENDER, **bad)


# -- answers -------------------------------------------------------------------------------

LEGACY_UNAUTHORIZED = {
    "requestError": {
        "serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}
    }
}


def new_error(code: str, description: str) -> dict[str, Any]:
    """Infobip's newer error model (the SDK's ``ApiError``)."""
    return {
        "errorCode": code,
        "description": description,
        "action": "Check the request and try again.",
        "violations": [{"property": "messages[0].destinations[0].to", "violation": "invalid"}],
        "resources": [],
    }


def legacy_error(code: str, text: str) -> dict[str, Any]:
    return {"requestError": {"serviceException": {"messageId": code, "text": text}}}


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable", "handed_off"),
    [
        (401, LEGACY_UNAUTHORIZED, "UNAUTHORIZED", False, False),
        (401, new_error("E401", "Unauthorized"), "E401", False, False),
        (400, new_error("E400", "Request cannot be processed."), "E400", False, False),
        (400, legacy_error("BAD_REQUEST", "Bad request"), "BAD_REQUEST", False, False),
        (403, legacy_error("FORBIDDEN", "Forbidden"), "FORBIDDEN", False, False),
        (
            429,
            legacy_error("TOO_MANY_REQUESTS", "Too many requests"),
            "TOO_MANY_REQUESTS",
            True,
            False,
        ),
        (429, new_error("E429", "Too many requests"), "E429", True, False),
        (500, legacy_error("GENERAL_ERROR", "Something went wrong"), "GENERAL_ERROR", True, True),
        (500, legacy_error("UNAUTHORIZED", "Invalid login details"), "UNAUTHORIZED", False, True),
        (503, b"", "503", True, False),
        (502, ["not", "an", "error", "object"], "502", True, True),
    ],
)
async def test_error_answers(
    stub: StubServer,
    provider: InfobipProvider,
    status: int,
    body: Body,
    code: str,
    retryable: bool,
    handed_off: bool,
) -> None:
    stub.respond(status, body)
    error = await failure(provider, settings(stub))
    assert (error.code, error.retryable, error.handed_off, error.status) == (
        code,
        retryable,
        handed_off,
        status,
    )


@pytest.mark.parametrize("channel", ["sms", "voice"])
@pytest.mark.parametrize(
    ("status", "code"),
    [
        (
            {
                "groupId": 5,
                "groupName": "REJECTED",
                "id": 12,
                "name": "REJECTED_NOT_ENOUGH_CREDITS",
            },
            "REJECTED_NOT_ENOUGH_CREDITS",
        ),
        (
            {
                "groupId": 2,
                "groupName": "UNDELIVERABLE",
                "id": 9,
                "name": "UNDELIVERABLE_NOT_DELIVERED",
            },
            "UNDELIVERABLE_NOT_DELIVERED",
        ),
        (
            {"groupId": 4, "groupName": "EXPIRED", "id": 15, "name": "EXPIRED_EXPIRED"},
            "EXPIRED_EXPIRED",
        ),
        ({"groupName": "REJECTED"}, "REJECTED"),
        ({"groupId": 5}, "REJECTED"),
    ],
)
async def test_a_refused_status_in_a_200_is_a_permanent_refusal(
    stub: StubServer, provider: InfobipProvider, channel: str, status: dict[str, Any], code: str
) -> None:
    stub.respond(200, (voice_answer if channel == "voice" else sms_answer)(status))
    error = await failure(provider, settings(stub), channel=channel)
    assert (error.code, error.retryable, error.handed_off, error.status) == (
        code,
        False,
        False,
        200,
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET"},
            "DELIVERED",
        ),
        (PENDING, "PENDING"),
        ({}, None),
    ],
)
async def test_pending_and_delivered_are_success(
    stub: StubServer, provider: InfobipProvider, status: dict[str, Any], expected: str | None
) -> None:
    stub.respond(200, sms_answer(status))
    receipt = await provider.send(make_message(), settings(stub), CREDENTIALS)
    assert (receipt.message_id, receipt.status) == (MESSAGE_ID, expected)


@pytest.mark.parametrize(
    "body", [{"bulkId": "1", "messages": []}, {"messages": [{"status": PENDING}]}, {}]
)
async def test_a_200_without_message_id_is_malformed_and_handed_off(
    stub: StubServer, provider: InfobipProvider, body: dict[str, Any]
) -> None:
    stub.respond(200, body)
    error = await failure(provider, settings(stub))
    assert (error.code, error.retryable, error.handed_off) == ("malformed_response", False, True)


# -- documentation -------------------------------------------------------------------------


def test_the_doc_lists_every_setting_credential_and_code() -> None:
    text = DOC.read_text("utf-8")
    intro = text.split("\n## ", 1)[0]
    assert "`plugins.infobip`" in intro
    assert "`infobip`" in intro
    fields = [*InfobipConfig.model_fields, *InfobipCredentials.model_fields]
    codes = [*ERRORS.permanent, *ERRORS.retryable, "REJECTED", "UNDELIVERABLE", "EXPIRED"]
    generic = ["timeout", "connect_timeout", "connection_error", "disconnected"]
    generic += ["malformed_response", "configuration_error"]
    for name in [*fields, *codes, *generic]:
        assert f"`{name}`" in text, name


def test_the_doc_tenant_example_validates() -> None:
    text = DOC.read_text("utf-8")
    (block,) = re.findall(r"^```toml\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    data = tomllib.loads(block)
    tenants = TomlTenantDirectory.from_mapping(data, source="infobip.md")
    tenant = tenants.get("acme")
    assert tenant.provider == "infobip"
    InfobipConfig.model_validate(tenant.provider_settings)
    assert set(tenant.credentials_env) == set(InfobipCredentials.model_fields)
