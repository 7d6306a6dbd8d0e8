"""ClickSend: the SMS and voice requests, the per-message statuses and the request-level codes.

No OpenAPI spec for ClickSend is in tests/specs, so the contract is checked by
:func:`contract_problems`, written from ClickSend's REST v3 documentation and SDK models
(SmsMessage, VoiceMessage), and a test proves that it can fail.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from plugins.clicksend import (
    ERRORS,
    LANGUAGES,
    ClickSendConfig,
    ClickSendCredentials,
    ClickSendProvider,
)
from runtime.cli import app
from runtime.errors import ProviderError
from runtime.providers import Receipt
from tests.providers.case_clicksend import API_KEY, MESSAGE_ID, USERNAME, answer, error
from tests.providers.harness import CODE, Answer, make_message
from tests.support.stub_server import RecordedRequest, StubServer

CREDENTIALS = ClickSendCredentials(username=USERNAME, api_key=API_KEY)

# ClickSend's message models: field -> required (the SDK's SmsMessage and VoiceMessage; `to`
# may be replaced by `list_id`, which this plugin never uses).
SMS_FIELDS = {
    "body": True,
    "to": True,
    "source": False,
    "from": False,
    "schedule": False,
    "custom_string": False,
    "list_id": False,
    "country": False,
    "from_email": False,
}
VOICE_FIELDS = {
    "body": True,
    "to": True,
    "voice": True,
    "lang": True,
    "custom_string": True,
    "source": False,
    "list_id": False,
    "country": False,
    "schedule": False,
    "require_input": False,
    "machine_detection": False,
}


def contract_problems(request: RecordedRequest) -> list[str]:
    """What in ``request`` breaks ClickSend's documented send contract (empty: nothing)."""
    fields = {"/sms/send": SMS_FIELDS, "/voice/send": VOICE_FIELDS}.get(request.path)
    if request.method != "POST" or fields is None:
        return [f"not a send endpoint: {request.method} {request.path}"]
    problems = []
    headers = {name.lower(): value for name, value in request.headers.items()}
    if headers.get("content-type") != "application/json":
        problems.append("Content-Type is not application/json")
    if not headers.get("authorization", "").startswith("Basic "):
        problems.append("no HTTP Basic authorization")
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return [*problems, "body is not JSON"]
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        return [*problems, "no messages list"]
    for item in messages:
        problems += [f"unknown field {name!r}" for name in item if name not in fields]
        problems += [
            f"missing {name!r}"
            for name, required in fields.items()
            if required and not item.get(name)
        ]
        to = item.get("to", "")
        if not (isinstance(to, str) and to.startswith("+") and to[1:].isdigit()):
            problems.append(f"'to' is not E.164: {to!r}")
        if "voice" in item and item["voice"] not in ("female", "male"):
            problems.append(f"voice {item['voice']!r} is neither female nor male")
        if "lang" in item and item["lang"] not in LANGUAGES:
            problems.append(f"lang {item['lang']!r} is not a ClickSend language")
        for flag in ("require_input", "machine_detection"):
            if flag in item and item[flag] not in (0, 1):
                problems.append(f"{flag} is not 0 or 1")
    return problems


@pytest.fixture
async def provider() -> AsyncIterator[ClickSendProvider]:
    made = ClickSendProvider()
    yield made
    await made.aclose()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def settings(stub: StubServer, **fields: Any) -> ClickSendConfig:
    return ClickSendConfig(**{"base_url": stub.url, **fields})


async def send_ok(
    provider: ClickSendProvider, stub: StubServer, config: ClickSendConfig, **message: Any
) -> tuple[Receipt, RecordedRequest, dict[str, Any]]:
    ok = answer()
    stub.respond(ok.status, ok.body)
    receipt = await provider.send(make_message(**message), config, CREDENTIALS)
    (sent,) = stub.requests
    assert contract_problems(sent) == []
    (item,) = orjson.loads(sent.body)["messages"]
    return receipt, sent, item


async def failure(provider: ClickSendProvider, stub: StubServer, reply: Answer) -> ProviderError:
    stub.respond(reply.status, reply.body, reply.headers)
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(), settings(stub), CREDENTIALS)
    for secret in (CODE, API_KEY, USERNAME):
        assert secret not in str(caught.value)
    return caught.value


# -- requests ------------------------------------------------------------------------------


async def test_sms_request(provider: ClickSendProvider, stub: StubServer) -> None:
    receipt, sent, item = await send_ok(provider, stub, settings(stub, sender="+447700900123"))
    assert receipt == Receipt(provider="clicksend", message_id=MESSAGE_ID, status="SUCCESS")
    assert (sent.method, sent.path) == ("POST", "/sms/send")
    scheme, _, token = sent.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode() == f"{USERNAME}:{API_KEY}"
    assert item == {
        "source": "phone-actions",
        "body": f"{CODE} is your code",
        "to": "+447911123456",
        "from": "+447700900123",
        "custom_string": "msg-1",
    }


async def test_without_a_sender_there_is_no_from(
    provider: ClickSendProvider, stub: StubServer
) -> None:
    _, _, item = await send_ok(provider, stub, settings(stub))
    assert "from" not in item


async def test_the_base_url_keeps_its_v3_path(
    provider: ClickSendProvider, stub: StubServer
) -> None:
    assert ClickSendConfig().base_url == "https://rest.clicksend.com/v3"
    ok = answer()
    stub.respond(ok.status, ok.body)
    await provider.send(make_message(), settings(stub, base_url=f"{stub.url}/v3/"), CREDENTIALS)
    assert stub.requests[0].path == "/v3/sms/send"


async def test_voice_request(provider: ClickSendProvider, stub: StubServer) -> None:
    receipt, sent, item = await send_ok(
        provider, stub, settings(stub, sender="+447700900123"), channel="voice"
    )
    assert receipt.message_id == MESSAGE_ID
    assert (sent.method, sent.path) == ("POST", "/voice/send")
    assert item == {
        "source": "phone-actions",
        "body": "Your code is 7. 3. 5. 1. 9. 4.",
        "to": "+447911123456",
        "voice": "female",
        "lang": "en-gb",
        "custom_string": "msg-1",
        "require_input": 0,
        "machine_detection": 0,
    }


@pytest.mark.parametrize(
    ("locale", "voice", "lang", "said_by"),
    [
        ("en_GB", "female", "en-gb", "female"),
        ("en", "male", "en-us", "male"),
        ("en-AU", "male", "en-au", "male"),
        ("fr", "female", "fr-fr", "female"),
        ("fr-CA", "male", "fr-ca", "female"),  # fr-ca has only a female voice
        ("pt", "female", "pt-pt", "male"),  # pt-pt has only a male voice
        ("pt-BR", "female", "pt-br", "female"),
        ("cy", "female", "cy-gb-wls", "female"),
        ("es-AR", "female", "es-es", "female"),
        ("nn", "male", "nb-no", "female"),
        ("zh-CN", "female", "en-us", "female"),  # not spoken: default_language
        ("", "female", "en-us", "female"),
    ],
)
async def test_voice_language_and_voice_from_the_locale(
    provider: ClickSendProvider,
    stub: StubServer,
    locale: str,
    voice: str,
    lang: str,
    said_by: str,
) -> None:
    config = settings(stub, voice=voice)
    _, _, item = await send_ok(provider, stub, config, channel="voice", locale=locale)
    assert (item["lang"], item["voice"]) == (lang, said_by)


async def test_default_language_is_used_for_a_language_clicksend_lacks(
    provider: ClickSendProvider, stub: StubServer
) -> None:
    config = settings(stub, default_language="EN-AU")
    _, _, item = await send_ok(provider, stub, config, channel="voice", locale="ja-JP")
    assert item["lang"] == "en-au"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"default_language": "en-nz"}, "default_language"),
        ({"voice": "robot"}, "voice"),
        ({"sender": ""}, "sender"),
        ({"base_url": "rest.clicksend.com/v3"}, "base_url"),
        ({"from": "+447700900123"}, "from"),
    ],
)
async def test_invalid_settings_are_configuration_errors(
    provider: ClickSendProvider, stub: StubServer, fields: dict[str, str], field: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(), {"base_url": stub.url, **fields}, CREDENTIALS)
    assert caught.value.code == "configuration_error"
    assert field in caught.value.message
    assert stub.requests == []


def test_the_contract_check_can_fail() -> None:
    """Proof that :func:`contract_problems` rejects what ClickSend would reject."""
    bad = RecordedRequest(
        method="POST",
        path="/voice/send",
        query={},
        headers={"content-type": "application/json"},
        body=orjson.dumps(
            {"messages": [{"body": "hi", "to": "447911123456", "voice": "robot", "lang": "xx"}]}
        ),
    )
    assert contract_problems(bad) == [
        "no HTTP Basic authorization",
        "missing 'custom_string'",
        "'to' is not E.164: '447911123456'",
        "voice 'robot' is neither female nor male",
        "lang 'xx' is not a ClickSend language",
    ]


# -- answers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        ("INVALID_RECIPIENT", False),
        ("INSUFFICIENT_CREDIT", False),
        ("COUNTRY_NOT_ENABLED", False),
        ("INVALID_SENDER_ID", False),
        ("ACCOUNT_NOT_ACTIVATED", False),
        ("REGISTRATION_NEEDED", False),
        ("INVALID_LANG", False),
        ("INVALID_VOICE", False),
        ("EMPTY_MESSAGE", False),
        ("THROTTLED", True),  # identical message just sent: try again in a few seconds
        ("INTERNAL_ERROR", True),
        ("SOMETHING_IS_WRONG", True),
        ("A_STATUS_CLICKSEND_ADDS_LATER", False),
    ],
)
async def test_a_refused_message_reports_its_status(
    provider: ClickSendProvider, stub: StubServer, status: str, retryable: bool
) -> None:
    error_ = await failure(provider, stub, answer(status))
    assert (error_.code, error_.status) == (status, 200)
    assert (error_.retryable, error_.handed_off) == (retryable, False)
    assert error_.message == f"ClickSend refused the message (status {status})"


@pytest.mark.parametrize(
    ("http_code", "response_code", "retryable", "handed_off"),
    [
        (400, "BAD_REQUEST", False, False),
        (401, "UNAUTHORIZED", False, False),
        (403, "FORBIDDEN", False, False),
        (404, "NOT_FOUND", False, False),
        (405, "METHOD_NOT_FOUND", False, False),
        (400, "INVALID_REQUEST", False, False),
        (429, "TOO_MANY_REQUESTS", True, False),
        (500, "INTERNAL_SERVER_ERROR", True, True),  # may come after ClickSend queued it
        (503, "SERVICE_UNAVAILABLE", True, False),
    ],
)
async def test_request_level_errors(
    provider: ClickSendProvider,
    stub: StubServer,
    http_code: int,
    response_code: str,
    retryable: bool,
    handed_off: bool,
) -> None:
    error_ = await failure(provider, stub, error(http_code, response_code, "Nope, not today."))
    assert (error_.code, error_.status) == (response_code, http_code)
    assert (error_.retryable, error_.handed_off) == (retryable, handed_off)
    assert error_.message == f"ClickSend answered HTTP {http_code}: Nope, not today."


@pytest.mark.parametrize("body", [b"", b"Unauthorized", b"[1, 2]", b'{"response_code": null}'])
async def test_an_error_without_a_response_code_is_reported_by_status(
    provider: ClickSendProvider, stub: StubServer, body: bytes
) -> None:
    error_ = await failure(provider, stub, Answer(401, body, {"Content-Type": "text/plain"}))
    assert (error_.code, error_.retryable, error_.handed_off) == ("401", False, False)


async def test_a_200_whose_request_failed_is_a_refusal(
    provider: ClickSendProvider, stub: StubServer
) -> None:
    reply = error(200, "INSUFFICIENT_CREDIT", "You have insufficient credit.")
    error_ = await failure(provider, stub, reply)
    assert (error_.code, error_.retryable, error_.handed_off) == (
        "INSUFFICIENT_CREDIT",
        False,
        False,
    )


@pytest.mark.parametrize(
    "body",
    [
        {"http_code": 200, "response_code": "SUCCESS", "data": None},
        {"http_code": 200, "response_code": "SUCCESS", "data": {"messages": []}},
        {"response_code": "SUCCESS", "data": {"messages": [{"status": "SUCCESS"}]}},
        {"response_code": "SUCCESS", "data": {"messages": [{"message_id": "x"}]}},
        {
            "response_code": "SUCCESS",
            "data": {"messages": [{"status": "SUCCESS", "message_id": ""}]},
        },
        [{"message_id": MESSAGE_ID}],
    ],
)
async def test_unreadable_successes_are_malformed_and_handed_off(
    provider: ClickSendProvider, stub: StubServer, body: Any
) -> None:
    error_ = await failure(provider, stub, Answer(200, body))
    assert (error_.code, error_.retryable, error_.handed_off) == ("malformed_response", False, True)


def test_every_code_is_classified_once() -> None:
    assert not ERRORS.permanent & ERRORS.retryable
    assert {"INVALID_RECIPIENT", "INSUFFICIENT_CREDIT", "COUNTRY_NOT_ENABLED"} <= ERRORS.permanent
    assert "TOO_MANY_REQUESTS" in ERRORS.retryable


def test_providers_output_says_voice_is_closed_to_new_accounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ClickSend's docs say voice is closed to new accounts: ``phone-actions providers`` says
    so next to the voice setting, and the channel is still offered to the accounts that have
    it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tmp_path / "none.toml"))
    result = CliRunner().invoke(app, ["providers", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = [row for row in json.loads(result.output) if row["name"] == "clicksend"]
    assert row["channels"] == ["sms", "voice"]
    (voice,) = [field for field in row["settings"] if field["name"] == "voice"]
    assert "closed to new accounts" in voice["description"]
    page = Path(__file__).resolve().parents[2] / "docs" / "providers" / "clicksend.md"
    assert "Voice is closed to new ClickSend accounts" in page.read_text("utf-8")
