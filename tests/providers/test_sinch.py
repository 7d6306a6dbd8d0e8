"""Sinch: requests valid against its two OpenAPI specs, the request shapes, and its error tables
(docs/providers/sinch.md)."""

from __future__ import annotations

import base64
import re
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from plugins.sinch import (
    SMS_ERRORS,
    TTS_LOCALES,
    TTS_MAX_CHARS,
    VOICE_ERRORS,
    SinchConfig,
    SinchCredentials,
    SinchProvider,
    register_providers,
    spoken_text,
    tts_locale,
)
from runtime.errors import ProviderError
from runtime.locales import MAIN_REGION
from runtime.providers import Provider
from runtime.settings import Settings
from runtime.tenants import TomlTenantDirectory
from tests.providers.case_sinch import (
    API_TOKEN,
    APPLICATION_KEY,
    APPLICATION_SECRET,
    CALL_CREATED,
    CASE,
    CREDENTIALS,
    FROM_NUMBER,
    MESSAGE_ID,
    SENDER,
    SERVICE_PLAN_ID,
    SMS_CREATED,
    config,
)
from tests.providers.harness import CODE, RECIPIENT, make_message
from tests.support.openapi_server import OpenApiServer, load_spec, spec_path
from tests.support.stub_server import RecordedRequest, StubServer

SMS_HOST = "https://us.sms.api.sinch.com"  # sinch_sms.yaml `servers[0]` (no path prefix)
VOICE_HOST = "https://calling.api.sinch.com"  # sinch_voice.patched.yaml `servers[0]`
SMS_PATH = f"/xms/v1/{SERVICE_PLAN_ID}/batches"
VOICE_PATH = "/calling/v1/callouts"
VOICE_TEXT = "Your code is 7. 3. 5. 1. 9. 4."
DOC = Path(__file__).resolve().parents[2] / "docs" / "providers" / "sinch.md"


@pytest.fixture
async def provider() -> AsyncIterator[SinchProvider]:
    made = SinchProvider()
    yield made
    await made.aclose()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def settings(base_url: str, **overrides: Any) -> SinchConfig:
    values: dict[str, Any] = {**config(base_url), **overrides}
    return SinchConfig.model_validate({k: v for k, v in values.items() if v is not None})


def credentials(**overrides: str | None) -> SinchCredentials:
    values: dict[str, Any] = {**CREDENTIALS, **overrides}
    return SinchCredentials.model_validate({k: v for k, v in values.items() if v is not None})


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def failure(
    provider: SinchProvider,
    config_: Any,
    credentials_: Any = None,
    **message: Any,
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.send(
            make_message(**message),
            config_,
            credentials() if credentials_ is None else credentials_,
        )
    text = str(caught.value)
    for secret in (CODE, VOICE_TEXT, *CREDENTIALS.values()):
        assert secret not in text, f"{secret!r} leaked into {text!r}"
    return caught.value


# -- contract tests against the saved specs ---------------------------------------------------


@pytest.fixture
def sms_api() -> Iterator[OpenApiServer]:
    spec = load_spec(spec_path("sinch_sms.yaml"))
    ok = CASE.ok["sms"]
    with OpenApiServer(spec, host_url=SMS_HOST, status=ok.status, body=ok.body) as server:
        yield server


@pytest.fixture
def voice_api() -> Iterator[OpenApiServer]:
    spec = load_spec(spec_path("sinch_voice.patched.yaml"))
    ok = CASE.ok["voice"]
    with OpenApiServer(spec, host_url=VOICE_HOST, status=ok.status, body=ok.body) as server:
        yield server


@pytest.mark.contract
@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"callback_url": "https://hooks.acme.example/sinch?t=1", "delivery_report": "summary"},
    ],
    ids=["plain", "with-delivery-report"],
)
async def test_sms_request_is_valid_against_the_spec(
    sms_api: OpenApiServer, provider: SinchProvider, extra: dict[str, str]
) -> None:
    receipt = await provider.send(make_message(), settings(sms_api.url, **extra), credentials())
    assert (receipt.provider, receipt.message_id) == ("sinch", MESSAGE_ID)
    assert sms_api.errors == []
    (sent,) = sms_api.requests
    assert (sent.method, sent.path) == ("POST", SMS_PATH)


@pytest.mark.contract
async def test_voice_request_is_valid_against_the_spec(
    voice_api: OpenApiServer, provider: SinchProvider
) -> None:
    receipt = await provider.send(
        make_message(channel="voice"), settings(voice_api.url), credentials()
    )
    assert (receipt.provider, receipt.message_id) == ("sinch", MESSAGE_ID)
    assert voice_api.errors == []
    (sent,) = voice_api.requests
    assert (sent.method, sent.path) == ("POST", VOICE_PATH)


def recorded(path: str, body: dict[str, Any], authorization: str) -> RecordedRequest:
    return RecordedRequest(
        method="POST",
        path=path,
        query={},
        headers={"content-type": "application/json", "authorization": authorization},
        body=orjson.dumps(body),
    )


@pytest.mark.contract
async def test_the_sms_validator_rejects_a_batch_without_recipients(
    sms_api: OpenApiServer,
) -> None:
    """Proof that the SMS contract test can fail: the spec requires ``to`` and a Bearer token
    (and accepts the same batch with both)."""
    good = {"from": SENDER, "to": [RECIPIENT], "body": "hi"}
    assert sms_api.validate(recorded(SMS_PATH, good, f"Bearer {API_TOKEN}")) == []
    bad = {"from": SENDER, "body": "hi"}
    assert sms_api.validate(recorded(SMS_PATH, bad, f"Bearer {API_TOKEN}"))
    unauthenticated = recorded(SMS_PATH, good, "")
    del unauthenticated.headers["authorization"]
    assert sms_api.validate(unauthenticated)  # the spec requires the Bearer token


@pytest.mark.contract
async def test_the_voice_validator_rejects_a_destination_without_endpoint(
    voice_api: OpenApiServer,
) -> None:
    """Proof that the voice contract test can fail: ``destination.endpoint`` is required."""
    auth = basic(APPLICATION_KEY, APPLICATION_SECRET)
    callout: dict[str, Any] = {
        "method": "ttsCallout",
        "ttsCallout": {"cli": FROM_NUMBER, "destination": {"type": "number"}, "text": "hi"},
    }
    assert voice_api.validate(recorded(VOICE_PATH, callout, auth))
    callout["ttsCallout"]["destination"]["endpoint"] = RECIPIENT
    assert voice_api.validate(recorded(VOICE_PATH, callout, auth)) == []
    callout["method"] = "smsCallout"
    assert voice_api.validate(recorded(VOICE_PATH, callout, auth))


# -- request shapes ---------------------------------------------------------------------------


async def test_sms_request_shape(stub: StubServer, provider: SinchProvider) -> None:
    stub.respond(201, SMS_CREATED)
    receipt = await provider.send(make_message(), settings(stub.url), credentials())
    assert receipt.message_id == MESSAGE_ID
    (sent,) = stub.requests
    assert (sent.method, sent.path) == ("POST", SMS_PATH)
    assert sent.headers["Authorization"] == f"Bearer {API_TOKEN}"
    assert sent.headers["Content-Type"] == "application/json"
    assert orjson.loads(sent.body) == {
        "from": SENDER,
        "to": [RECIPIENT],
        "body": f"{CODE} is your code",
        "client_reference": "msg-1",
    }


async def test_sms_optional_fields(stub: StubServer, provider: SinchProvider) -> None:
    """``callback_url`` kept as written (query included), ``delivery_report`` passed through,
    ``from`` falls back to ``from_number``, and a long message id is cut to 128 characters."""
    stub.respond(201, SMS_CREATED)
    config_ = settings(
        stub.url,
        sender=None,
        callback_url="https://hooks.acme.example/sinch/?tenant=acme",
        delivery_report="per_recipient",
    )
    await provider.send(make_message(id="m" * 200), config_, credentials())
    body = orjson.loads(stub.requests[0].body)
    assert body["from"] == FROM_NUMBER
    assert body["callback_url"] == "https://hooks.acme.example/sinch/?tenant=acme"
    assert body["delivery_report"] == "per_recipient"
    assert body["client_reference"] == "m" * 128


async def test_sms_without_any_sender_leaves_from_to_the_service_plan(
    stub: StubServer, provider: SinchProvider
) -> None:
    stub.respond(201, SMS_CREATED)
    await provider.send(
        make_message(), settings(stub.url, sender=None, from_number=None), credentials()
    )
    body = orjson.loads(stub.requests[0].body)
    assert "from" not in body
    assert "callback_url" not in body
    assert "delivery_report" not in body


@pytest.mark.parametrize(
    ("region", "origin"),
    [
        (None, "https://us.sms.api.sinch.com"),
        ("eu", "https://eu.sms.api.sinch.com"),
        ("au", "https://au.sms.api.sinch.com"),
        ("br", "https://br.sms.api.sinch.com"),
        ("ca", "https://ca.sms.api.sinch.com"),
    ],
)
def test_region_picks_the_default_sms_host(region: str | None, origin: str) -> None:
    values = {"service_plan_id": SERVICE_PLAN_ID} | ({"region": region} if region else {})
    config_ = SinchConfig.model_validate(values)
    assert config_.sms_origin() == origin
    request = SinchProvider().build_request(make_message(), config_, credentials())
    assert request.url == f"{origin}{SMS_PATH}"


def test_sms_base_url_overrides_region() -> None:
    config_ = SinchConfig(region="eu", sms_base_url="http://127.0.0.1:9/prefix/")
    assert config_.sms_origin() == "http://127.0.0.1:9/prefix"
    assert SinchConfig().voice_base_url == VOICE_HOST


async def test_voice_request_shape(stub: StubServer, provider: SinchProvider) -> None:
    stub.respond(200, CALL_CREATED)
    receipt = await provider.send(make_message(channel="voice"), settings(stub.url), credentials())
    assert receipt.message_id == MESSAGE_ID
    (sent,) = stub.requests
    assert (sent.method, sent.path) == ("POST", VOICE_PATH)
    assert sent.headers["Authorization"] == basic(APPLICATION_KEY, APPLICATION_SECRET)
    assert sent.headers["Content-Type"] == "application/json"
    assert orjson.loads(sent.body) == {
        "method": "ttsCallout",
        "ttsCallout": {
            "cli": FROM_NUMBER,
            "destination": {"type": "number", "endpoint": RECIPIENT},
            "locale": "en-GB",
            "text": f"{VOICE_TEXT} {VOICE_TEXT}",
        },
    }


# Locale -> the ttsCallout locale: always one Sinch lists for TTS, else en-US.
TTS_CASES = [
    ("en_GB", "en-GB"),
    ("pt-BR", "pt-BR"),
    ("pt", "pt-PT"),
    ("fr", "fr-FR"),
    ("de_AT.UTF-8", "de-AT"),
    ("de-CH", "de-DE"),  # a region Sinch does not list: the language's main one
    ("es-AR", "es-ES"),
    ("ar", "arb"),  # Sinch's Arabic is arb
    ("ar-EG", "arb"),
    ("zh", "cmn-CN"),  # Sinch's Mandarin is cmn-CN
    ("zh-Hans", "cmn-CN"),
    ("zh-TW", "cmn-CN"),  # no cmn-TW at Sinch: Mandarin still
    ("zh-HK", "zh-HK"),  # Cantonese
    ("yue", "zh-HK"),
    ("en-GB-WLS", "en-GB-WLS"),
    ("no", "nb-NO"),
    ("he-IL", "en-US"),  # not a Sinch TTS language: the default
    ("xx", "en-US"),
    ("", "en-US"),
]


@pytest.mark.parametrize(("locale", "expected"), TTS_CASES)
def test_tts_locale(locale: str, expected: str) -> None:
    assert tts_locale(locale) == expected


def test_every_listed_locale_is_sent_as_listed_and_nothing_else_is_sent() -> None:
    for code in TTS_LOCALES.codes:
        assert tts_locale(code) == code
    for locale in [*MAIN_REGION, *MAIN_REGION.values(), "zh-SG", "zh-MO", "fr-BE", "en-IE"]:
        assert tts_locale(locale) in TTS_LOCALES


@pytest.mark.parametrize(("locale", "expected"), TTS_CASES[:10])
async def test_voice_locale(
    stub: StubServer, provider: SinchProvider, locale: str, expected: str
) -> None:
    stub.respond(200, CALL_CREATED)
    await provider.send(
        make_message(channel="voice", locale=locale), settings(stub.url), credentials()
    )
    assert orjson.loads(stub.requests[0].body)["ttsCallout"]["locale"] == expected


@pytest.mark.parametrize("body", [{"callId": MESSAGE_ID}, {"callid": MESSAGE_ID}])
async def test_voice_reads_call_id_in_either_spelling(
    stub: StubServer, provider: SinchProvider, body: dict[str, str]
) -> None:
    stub.respond(200, body)
    receipt = await provider.send(make_message(channel="voice"), settings(stub.url), credentials())
    assert receipt.message_id == MESSAGE_ID


def test_spoken_text_repeats_within_the_tts_limit() -> None:
    assert spoken_text("abc.", 1) == "abc."
    assert spoken_text("abc.", 3) == "abc. abc. abc."
    long = "x" * 250
    assert spoken_text(long, 3) == f"{long} {long}"  # three would be 752 characters
    assert len(spoken_text(long, 3)) <= TTS_MAX_CHARS
    too_long = "y" * (TTS_MAX_CHARS + 1)
    assert spoken_text(too_long, 2) == too_long  # at least once, Sinch decides


async def test_voice_repeats_setting(stub: StubServer, provider: SinchProvider) -> None:
    stub.respond(200, CALL_CREATED)
    await provider.send(
        make_message(channel="voice"), settings(stub.url, voice_repeats=1), credentials()
    )
    assert orjson.loads(stub.requests[0].body)["ttsCallout"]["text"] == VOICE_TEXT


# -- configuration errors: found before any request -------------------------------------------


@pytest.mark.parametrize(
    ("channel", "config_overrides", "credential_overrides", "names"),
    [
        ("voice", {"from_number": None}, {}, "from_number"),
        ("voice", {}, {"application_key": None}, "application_key"),
        ("voice", {}, {"application_secret": None}, "application_secret"),
        ("sms", {"service_plan_id": None}, {}, "service_plan_id"),
        ("sms", {}, {"api_token": None}, "api_token"),
    ],
)
async def test_a_channel_without_its_settings_is_a_configuration_error(
    stub: StubServer,
    provider: SinchProvider,
    channel: str,
    config_overrides: dict[str, Any],
    credential_overrides: dict[str, Any],
    names: str,
) -> None:
    error = await failure(
        provider,
        settings(stub.url, **config_overrides),
        credentials(**credential_overrides),
        channel=channel,
    )
    assert (error.code, error.retryable, error.handed_off) == ("configuration_error", False, False)
    assert names in error.message
    assert stub.requests == []


async def test_the_other_channel_needs_nothing_of_this_one(
    stub: StubServer, provider: SinchProvider
) -> None:
    """An SMS-only tenant (no voice settings or credentials) sends SMS; a voice-only one calls."""
    stub.respond(201, SMS_CREATED)
    sms_only = SinchConfig(service_plan_id=SERVICE_PLAN_ID, sms_base_url=stub.url)
    await provider.send(make_message(), sms_only, SinchCredentials(api_token=API_TOKEN))
    stub.respond(200, CALL_CREATED)
    voice_only = SinchConfig(from_number=FROM_NUMBER, voice_base_url=stub.url)
    keys = SinchCredentials(application_key=APPLICATION_KEY, application_secret=APPLICATION_SECRET)
    await provider.send(make_message(channel="voice"), voice_only, keys)
    assert [r.path for r in stub.requests] == [SMS_PATH, VOICE_PATH]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"from_number": "14045001000"}, "from_number"),
        ({"region": "jp"}, "region"),
        ({"service_plan_id": "../admin"}, "service_plan_id"),
        ({"sms_base_url": "ftp://example.com"}, "sms_base_url"),
        ({"callback_url": "/relative"}, "callback_url"),
        ({"delivery_report": "always"}, "delivery_report"),
        ({"voice_repeats": 4}, "voice_repeats"),
        ({"from": "Acme"}, "from"),
    ],
)
async def test_invalid_settings_name_the_field(
    stub: StubServer, provider: SinchProvider, overrides: dict[str, Any], field: str
) -> None:
    error = await failure(provider, {**config(stub.url), **overrides})
    assert error.code == "configuration_error"
    assert field in error.message
    assert stub.requests == []


# -- error tables -------------------------------------------------------------------------------

HTML = "<html>gateway says no</html>"


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable", "handed_off"),
    [
        (400, {"code": "syntax_invalid_parameter_format", "text": "bad to"}, None, False, False),
        (400, {"code": "syntax_constraint_violation", "text": "too long"}, None, False, False),
        (400, {"code": "syntax_invalid_json", "text": "not json"}, None, False, False),
        (403, {"code": "missing_callback_url", "text": "no url"}, None, False, False),
        (401, b"", "401", False, False),
        (401, {"code": "unauthorized", "text": "bad token"}, None, False, False),
        (404, HTML, "404", False, False),
        (429, {"code": "too_many_requests", "text": "slow down"}, None, True, False),
        (429, b"", "429", True, False),
        (503, HTML, "503", True, False),
        (500, {"code": "internal_error", "text": "oops"}, None, True, True),
        (502, HTML, "502", True, True),
        (500, {"code": "syntax_invalid_json", "text": "odd"}, None, False, True),
        (400, [1, 2], "400", False, False),
    ],
)
async def test_sms_errors(
    stub: StubServer,
    provider: SinchProvider,
    status: int,
    body: Any,
    code: str | None,
    retryable: bool,
    handed_off: bool,
) -> None:
    """Sinch's ``code`` string is the error code when the body has one, else the status."""
    stub.respond(status, body)
    error = await failure(provider, settings(stub.url))
    expected = code if code is not None else body["code"]
    assert (error.code, error.retryable, error.handed_off, error.status) == (
        expected,
        retryable,
        handed_off,
        status,
    )
    if isinstance(body, dict):
        assert body["text"] in error.message


def nested(status_line: str, code: str, message: str) -> dict[str, Any]:
    """The shape of the Calling API spec's error examples."""
    return {"response": {"error": {"status": status_line, "errorCode": code, "message": message}}}


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable", "handed_off"),
    [
        (400, {"errorCode": 40003, "message": "Invalid request"}, "40003", False, False),
        (402, {"errorCode": 40200, "message": "Payment required"}, "40200", False, False),
        (400, nested("400 Invalid Request", "40003", "Invalid request"), "40003", False, False),
        (402, nested("402 Payment Required", "40200", "Payment required"), "40200", False, False),
        (401, nested("401 Unauthorized", "40100", "Authorization required"), "40100", False, False),
        (400, {"errorCode": 40001, "message": "Illegal parameters"}, "40001", False, False),
        (429, {"errorCode": 42900, "message": "Capacity exceeded"}, "42900", True, False),
        (
            500,
            {"response": {"error": {"code": "50000", "message": "Internal"}}},
            "50000",
            True,
            True,
        ),
        (503, HTML, "503", True, False),
        (502, b"", "502", True, True),
        (403, "forbidden", "403", False, False),
        # a permanent code stays permanent even with a retryable status
        (503, {"errorCode": 40200, "message": "Payment required"}, "40200", False, False),
    ],
)
async def test_voice_errors(
    stub: StubServer,
    provider: SinchProvider,
    status: int,
    body: Any,
    code: str,
    retryable: bool,
    handed_off: bool,
) -> None:
    stub.respond(status, body)
    error = await failure(provider, settings(stub.url), channel="voice")
    assert (error.code, error.retryable, error.handed_off, error.status) == (
        code,
        retryable,
        handed_off,
        status,
    )
    assert error.message.startswith(f"Sinch voice answered HTTP {status}")


@pytest.mark.parametrize(
    ("channel", "status", "body"),
    [
        ("sms", 201, {"to": [RECIPIENT]}),
        ("sms", 201, [MESSAGE_ID]),
        ("sms", 201, {"id": None}),
        ("sms", 201, b""),
        ("voice", 200, {}),
        ("voice", 200, {"callid": ""}),
        ("voice", 200, {"callId": 17}),
        ("voice", 200, HTML),
    ],
)
async def test_an_unreadable_success_is_malformed_and_handed_off(
    stub: StubServer, provider: SinchProvider, channel: str, status: int, body: Any
) -> None:
    stub.respond(status, body)
    error = await failure(provider, settings(stub.url), channel=channel)
    assert (error.code, error.retryable, error.handed_off) == ("malformed_response", False, True)


# -- registration and documentation -------------------------------------------------------------


def test_register_providers_registers_sinch_for_sms_and_voice() -> None:
    registered: list[Provider] = []
    register_providers(registered.append, Settings())
    (made,) = registered
    assert isinstance(made, SinchProvider)
    assert (made.name, made.channels) == ("sinch", frozenset({"sms", "voice"}))


def test_the_doc_lists_every_setting_credential_and_code() -> None:
    text = DOC.read_text("utf-8")
    intro = text.split("\n## ", 1)[0]
    assert "`plugins.sinch`" in intro
    assert "`sinch`" in intro
    names = [*SinchConfig.model_fields, *SinchCredentials.model_fields]
    codes = [
        *SMS_ERRORS.permanent,
        *VOICE_ERRORS.permanent,
        *("timeout", "connect_timeout", "connection_error", "disconnected"),
        *("malformed_response", "configuration_error", "429", "503", "500"),
    ]
    missing = [name for name in (*names, *codes) if f"`{name}`" not in text]
    assert not missing, missing
    for name in names:
        assert re.search(rf"^\| `{name}` \|", text, flags=re.MULTILINE), f"{name}: no table row"


def test_the_doc_tenant_example_validates() -> None:
    blocks = re.findall(r"^```toml\n(.*?)^```", DOC.read_text("utf-8"), re.MULTILINE | re.DOTALL)
    (block,) = blocks
    data = tomllib.loads(block)
    tenants = TomlTenantDirectory.from_mapping(data, source="docs/providers/sinch.md")
    tenant = tenants.get("acme")
    assert tenant.provider == "sinch"
    SinchConfig.model_validate(tenant.provider_settings)
    SinchCredentials.model_validate(dict.fromkeys(tenant.credentials_env, "value-1234"))
    assert set(tenant.credentials_env) == set(SinchCredentials.model_fields)
