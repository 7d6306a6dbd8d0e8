"""Vonage: requests valid against its SMS and Voice specs, the JWT, and its error tables."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jwt
import orjson
import pytest

from plugins.vonage import VonageConfig, VonageCredentials, VonageProvider, register_providers
from plugins.vonage.sms import ERRORS, is_gsm7
from plugins.vonage.voice import JWT_LIFETIME, TALK_LANGUAGES, load_private_key, talk_language
from runtime import PhoneMessageRequest
from runtime.errors import ProviderError
from runtime.http import HttpResponse
from runtime.locales import MAIN_REGION
from runtime.providers import Provider
from runtime.settings import Settings
from tests.conftest import PipelineFactory
from tests.providers.case_vonage import (
    API_KEY,
    API_SECRET,
    APPLICATION_ID,
    CASE,
    CREDENTIALS,
    FROM_NUMBER,
    MESSAGE_ID,
    PRIVATE_KEY_PEM,
    PUBLIC_KEY,
    SMS_OK,
    VOICE_OK,
)
from tests.providers.harness import CODE, make_message
from tests.support.openapi_server import OpenApiServer, load_spec, spec_path
from tests.support.stub_server import RecordedRequest, StubServer

VOICE_TEXT = "Your code is 7. 3. 5. 1. 9. 4."
SMS_ONLY = {"api_key": API_KEY, "api_secret": API_SECRET}
VOICE_ONLY = {"application_id": APPLICATION_ID, "private_key": PRIVATE_KEY_PEM}


@pytest.fixture
async def provider() -> AsyncIterator[VonageProvider]:
    made = VonageProvider()
    yield made
    await made.aclose()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def config(base_url: str, **fields: Any) -> VonageConfig:
    values: dict[str, Any] = {
        "sender": "Acme",
        "from_number": FROM_NUMBER,
        "sms_base_url": base_url,
        "voice_base_url": base_url,
    }
    values.update(fields)
    return VonageConfig.model_validate({k: v for k, v in values.items() if v is not None})


async def failure(
    provider: VonageProvider,
    settings: VonageConfig | dict[str, Any],
    credentials: dict[str, str] = CREDENTIALS,
    **message: Any,
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(**message), settings, credentials)
    text = str(caught.value)
    for secret in (CODE, API_SECRET, PRIVATE_KEY_PEM, "7. 3. 5. 1. 9. 4."):
        assert secret not in text
    return caught.value


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a JWT, checked against the test key's public half."""
    claims: dict[str, Any] = jwt.decode(
        token,
        PUBLIC_KEY,
        algorithms=["RS256"],
        options={"require": ["application_id", "iat", "jti", "exp"]},
    )
    return claims


# -- contract: SMS ---------------------------------------------------------------------------


@pytest.fixture
def sms_api() -> Iterator[OpenApiServer]:
    spec = load_spec(spec_path("vonage_sms.yml"))
    with OpenApiServer(
        spec, host_url="https://rest.nexmo.com", path_prefix="/sms", status=200, body=SMS_OK
    ) as server:
        yield server


@pytest.mark.contract
async def test_sms_request_is_valid_against_the_spec(
    sms_api: OpenApiServer, provider: VonageProvider
) -> None:
    settings = VonageConfig(sender="Acme", sms_base_url=sms_api.url)
    receipt = await provider.send(make_message(), settings, CREDENTIALS)
    assert (receipt.provider, receipt.message_id) == ("vonage", MESSAGE_ID)
    assert sms_api.errors == []
    (sent,) = sms_api.requests
    assert (sent.method, sent.path) == ("POST", "/json")
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.form == {
        "api_key": [API_KEY],
        "api_secret": [API_SECRET],
        "from": ["Acme"],
        "to": ["447911123456"],
        "text": [f"{CODE} is your code"],
        "client-ref": ["msg-1"],
    }


@pytest.mark.contract
async def test_unicode_sms_with_a_callback_is_valid_against_the_spec(
    sms_api: OpenApiServer, provider: VonageProvider
) -> None:
    settings = VonageConfig(
        from_number=FROM_NUMBER,
        sms_base_url=sms_api.url,
        callback_url="https://hooks.acme.example/vonage/dlr?tenant=acme",
    )
    text = f"Ваш код {CODE}"
    await provider.send(make_message(text=text), settings, SMS_ONLY)
    assert sms_api.errors == []
    (sent,) = sms_api.requests
    assert sent.form["type"] == ["unicode"]
    assert sent.form["text"] == [text]
    assert sent.form["from"] == ["447911123000"]  # from_number, without "+"
    assert sent.form["callback"] == ["https://hooks.acme.example/vonage/dlr?tenant=acme"]


@pytest.mark.contract
def test_the_sms_validator_rejects_a_request_without_api_key(sms_api: OpenApiServer) -> None:
    """Proof that the contract test can fail: the spec requires ``api_key`` (8 characters)."""
    bad = RecordedRequest(
        method="POST",
        path="/json",
        query={},
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=b"api_secret=abcdef0123456789&from=Acme&to=447911123456&text=hi",
    )
    assert sms_api.validate(bad)


# -- contract: voice -------------------------------------------------------------------------


@pytest.fixture
def voice_api() -> Iterator[OpenApiServer]:
    spec = load_spec(spec_path("vonage_voice.patched.yml"))
    with OpenApiServer(
        spec, host_url="https://api.nexmo.com", path_prefix="/v1/calls", status=201, body=VOICE_OK
    ) as server:
        yield server


@pytest.mark.contract
async def test_voice_request_is_valid_against_the_spec(
    voice_api: OpenApiServer, provider: VonageProvider
) -> None:
    settings = VonageConfig(from_number=FROM_NUMBER, voice_base_url=voice_api.url)
    before = int(time.time())
    receipt = await provider.send(make_message(channel="voice"), settings, VOICE_ONLY)
    after = int(time.time())
    assert (receipt.provider, receipt.message_id) == ("vonage", MESSAGE_ID)
    assert voice_api.errors == []
    (sent,) = voice_api.requests
    assert (sent.method, sent.path) == ("POST", "/")
    assert sent.headers["Content-Type"] == "application/json"
    assert orjson.loads(sent.body) == {
        "to": [{"type": "phone", "number": "447911123456"}],
        "from": {"type": "phone", "number": "447911123000"},
        "ncco": [{"action": "talk", "text": VOICE_TEXT, "language": "en-GB", "loop": 2}],
    }
    scheme, _, token = sent.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = claims_of(token)
    assert claims["application_id"] == APPLICATION_ID
    assert before <= claims["iat"] <= after
    assert claims["exp"] == claims["iat"] + JWT_LIFETIME
    assert uuid.UUID(claims["jti"]).version == 4


@pytest.mark.contract
def test_the_voice_validator_rejects_a_call_without_to(voice_api: OpenApiServer) -> None:
    """Proof that the contract test can fail: the spec requires ``to``."""
    bad = RecordedRequest(
        method="POST",
        path="/",
        query={},
        headers={"content-type": "application/json", "authorization": "Bearer x.y.z"},
        body=orjson.dumps({"ncco": [{"action": "talk", "text": "hi"}]}),
    )
    assert voice_api.validate(bad)


@pytest.mark.contract
def test_the_voice_validator_rejects_a_call_without_authorization(
    voice_api: OpenApiServer,
) -> None:
    """The spec's ``bearerAuth``: a call without a token is invalid."""
    body = {
        "to": [{"type": "phone", "number": "447911123456"}],
        "from": {"type": "phone", "number": "447911123000"},
        "ncco": [{"action": "talk", "text": "hi"}],
    }
    headers = {"content-type": "application/json"}
    signed = {**headers, "authorization": "Bearer a.b.c"}
    good = RecordedRequest("POST", "/", {}, signed, orjson.dumps(body))
    bad = RecordedRequest("POST", "/", {}, headers, orjson.dumps(body))
    assert voice_api.validate(good) == []
    assert voice_api.validate(bad)


# -- the JWT ---------------------------------------------------------------------------------


async def test_each_call_gets_its_own_token(stub: StubServer, provider: VonageProvider) -> None:
    stub.respond(201, VOICE_OK)
    for _ in range(2):
        await provider.send(make_message(channel="voice"), config(stub.url), CREDENTIALS)
    tokens = [r.headers["Authorization"].removeprefix("Bearer ") for r in stub.requests]
    assert len({claims_of(t)["jti"] for t in tokens}) == 2


async def test_the_private_key_is_loaded_once(stub: StubServer, provider: VonageProvider) -> None:
    stub.respond(201, VOICE_OK)
    credentials = VonageCredentials.model_validate(CREDENTIALS)
    before = load_private_key.cache_info()
    for _ in range(3):
        await provider.send(make_message(channel="voice"), config(stub.url), credentials)
    after = load_private_key.cache_info()
    assert after.misses == before.misses
    assert after.hits == before.hits + 3


def test_a_pem_with_escaped_newlines_is_read() -> None:
    """A PEM pasted into one environment variable line, with ``\\n`` for each newline."""
    escaped = PRIVATE_KEY_PEM.strip().replace("\n", "\\n")
    key = load_private_key(escaped)
    assert key.public_key().public_numbers() == PUBLIC_KEY.public_numbers()


@pytest.mark.parametrize(
    "pem",
    [
        "not a key at all",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
async def test_a_bad_private_key_is_a_configuration_error(
    stub: StubServer, provider: VonageProvider, pem: str
) -> None:
    error = await failure(
        provider,
        config(stub.url),
        {**CREDENTIALS, "private_key": pem},
        channel="voice",
    )
    assert error.code == "configuration_error"
    assert "private_key" in error.message
    assert pem not in error.message
    assert stub.requests == []


def test_an_ec_private_key_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValueError, match="RSA"):
        load_private_key(pem)


# -- voice: configuration and language -------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "credentials", "missing"),
    [
        ({"sender": "Acme"}, CREDENTIALS, "from_number"),
        ({"from_number": FROM_NUMBER}, SMS_ONLY, "application_id and private_key"),
    ],
)
async def test_voice_needs_from_number_and_the_application(
    stub: StubServer,
    provider: VonageProvider,
    settings: dict[str, str],
    credentials: dict[str, str],
    missing: str,
) -> None:
    error = await failure(
        provider, {**settings, "voice_base_url": stub.url}, credentials, channel="voice"
    )
    assert (error.code, error.retryable, error.handed_off) == ("configuration_error", False, False)
    assert missing in error.message
    assert stub.requests == []


async def test_sms_needs_the_api_key_pair(stub: StubServer, provider: VonageProvider) -> None:
    error = await failure(provider, config(stub.url), VOICE_ONLY)
    assert (error.code, error.handed_off) == ("configuration_error", False)
    assert "api_key and api_secret" in error.message
    assert stub.requests == []


@pytest.mark.parametrize(
    ("credentials", "problem"),
    [
        ({}, "set api_key and api_secret"),
        ({"api_key": API_KEY}, "api_key and api_secret go together"),
        ({**SMS_ONLY, "application_id": APPLICATION_ID}, "application_id and private_key go"),
        ({**SMS_ONLY, "auth_token": "x" * 8}, "auth_token"),
    ],
)
async def test_credentials_come_in_complete_pairs(
    stub: StubServer, provider: VonageProvider, credentials: dict[str, str], problem: str
) -> None:
    error = await failure(provider, config(stub.url), credentials)
    assert error.code == "configuration_error"
    assert problem in error.message
    assert stub.requests == []


@pytest.mark.parametrize(
    "settings",
    [
        {},  # no sender at all
        {"sender": "Acme Corporation Ltd"},  # more than 11 characters
        {"sender": "Acme", "voice_base_url": "ftp://api.nexmo.com"},
        {"sender": "Acme", "callback_url": "/relative"},
        {"sender": "Acme", "from_number": "+44"},
        {"sender": "Acme", "region": "eu"},
    ],
)
async def test_invalid_settings_are_configuration_errors(
    provider: VonageProvider, settings: dict[str, str]
) -> None:
    error = await failure(provider, settings)
    assert (error.code, error.handed_off) == ("configuration_error", False)


def test_production_urls_are_the_defaults() -> None:
    settings = VonageConfig(sender="Acme")
    assert settings.sms_base_url == "https://rest.nexmo.com/sms"
    assert settings.voice_base_url == "https://api.nexmo.com/v1/calls"


# The locales a tenant may send and the code Vonage must get: always one of Vonage's own.
TALK_CASES = [
    ("en-GB", "en-GB"),
    ("en_us", "en-US"),
    ("en_GB.UTF-8", "en-GB"),
    ("fr", "fr-FR"),
    ("pt-BR", "pt-BR"),  # listed: kept, never folded into pt-PT
    ("pt", "pt-PT"),
    ("zh", "cmn-CN"),  # Vonage's Mandarin is cmn-CN, not zh-CN
    ("zh-Hans", "cmn-CN"),
    ("zh-Hant", "cmn-TW"),
    ("zh-TW", "cmn-TW"),
    ("zh-HK", "yue-CN"),  # Cantonese
    ("ar", "ar"),  # Vonage's Arabic is plain ar
    ("ar-EG", "ar"),
    ("es-AR", "es-ES"),  # a region Vonage does not list: the language's main one
    ("en-CA", "en-US"),
    ("de-CH", "de-DE"),
    ("nl-BE", "nl-BE"),
    ("nn", "nb-NO"),
    ("iw", "he-IL"),
    ("xx", "en-US"),  # not a language Vonage speaks: its default
    ("el-CY", "el-GR"),
    ("sw-KE", "en-US"),
    ("", "en-US"),
]


@pytest.mark.parametrize(("locale", "language"), TALK_CASES)
def test_talk_language(locale: str, language: str) -> None:
    assert talk_language(locale) == language


def test_every_listed_language_is_sent_as_listed_and_nothing_else_is_sent() -> None:
    for code in TALK_LANGUAGES.codes:
        assert talk_language(code) == code
        assert talk_language(code.lower().replace("-", "_")) == code
    for locale in [*MAIN_REGION, *MAIN_REGION.values(), "zh-SG", "yue", "ar-SA", "fr-BE"]:
        assert talk_language(locale) in TALK_LANGUAGES


@pytest.mark.parametrize(("locale", "language"), TALK_CASES[:12])
async def test_the_call_speaks_the_language_of_the_locale(
    stub: StubServer, provider: VonageProvider, locale: str, language: str
) -> None:
    stub.respond(201, VOICE_OK)
    await provider.send(make_message(channel="voice", locale=locale), config(stub.url), CREDENTIALS)
    (talk,) = orjson.loads(stub.requests[0].body)["ncco"]
    assert talk == {"action": "talk", "text": VOICE_TEXT, "language": language, "loop": 2}


async def test_an_event_url_goes_with_the_call(stub: StubServer, provider: VonageProvider) -> None:
    stub.respond(201, VOICE_OK)
    settings = config(stub.url, event_url="https://hooks.acme.example/vonage/events")
    await provider.send(make_message(channel="voice"), settings, CREDENTIALS)
    assert orjson.loads(stub.requests[0].body)["event_url"] == [
        "https://hooks.acme.example/vonage/events"
    ]


# -- SMS: request details --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "gsm7"),
    [
        (f"{CODE} is your code", True),
        ("Código: é à ü ñ ß Ø € [~]", False),  # ó is not GSM-7
        ("Votre code : é à ü ñ ß Ø € [~] {^}", True),
        ("Din kod är 123", True),
        ("Twój kod to 123", False),  # ó is not GSM-7 (ò is)
        ("Zażółć 123", False),
        ("你的验证码 123", False),
        ("code 123 👍", False),
    ],
)
def test_gsm7_detection(text: str, gsm7: bool) -> None:
    assert is_gsm7(text) is gsm7


async def test_a_gsm7_text_is_sent_without_type(stub: StubServer, provider: VonageProvider) -> None:
    stub.respond(200, SMS_OK)
    await provider.send(make_message(text=f"Votre code : {CODE} €"), config(stub.url), SMS_ONLY)
    assert "type" not in stub.requests[0].form


async def test_a_long_message_id_is_cut_to_the_client_ref_limit(
    stub: StubServer, provider: VonageProvider
) -> None:
    stub.respond(200, SMS_OK)
    await provider.send(make_message(id="m" * 60), config(stub.url), SMS_ONLY)
    assert stub.requests[0].form["client-ref"] == ["m" * 40]


async def test_a_numeric_sender_is_sent_as_digits(
    stub: StubServer, provider: VonageProvider
) -> None:
    stub.respond(200, SMS_OK)
    await provider.send(make_message(), config(stub.url, sender="+447911123001"), SMS_ONLY)
    assert stub.requests[0].form["from"] == ["447911123001"]


# -- SMS: the status table -------------------------------------------------------------------


SMS_STATUSES = [
    ("1", True),  # throttled
    ("2", False),  # missing parameters
    ("3", False),  # invalid parameters
    ("4", False),  # invalid credentials
    ("5", True),  # internal error
    ("6", False),  # invalid message / unrecognised prefix
    ("7", False),  # number barred
    ("8", False),  # partner account barred
    ("9", False),  # partner quota exceeded (no credit)
    ("10", True),  # too many existing binds (Vonage: "Back-off and retry")
    ("11", False),  # account not enabled for HTTP
    ("12", False),  # message too long
    ("14", False),  # invalid signature
    ("15", False),  # invalid sender address
    ("29", False),  # non-whitelisted destination
    ("33", False),  # deactivated number
    ("99", False),  # not in Vonage's table: an unknown refusal is not retried
]


def test_the_status_table_is_the_documented_one() -> None:
    documented = {status for status, _ in SMS_STATUSES if status != "99"}
    assert documented == ERRORS.retryable | ERRORS.permanent
    assert not ERRORS.retryable & ERRORS.permanent


@pytest.mark.parametrize(("status", "retryable"), SMS_STATUSES)
async def test_sms_statuses(
    stub: StubServer, provider: VonageProvider, status: str, retryable: bool
) -> None:
    stub.respond(
        200,
        {"message-count": "1", "messages": [{"status": status, "error-text": "Vonage says no"}]},
    )
    error = await failure(provider, config(stub.url))
    assert (error.code, error.retryable, error.handed_off, error.status) == (
        status,
        retryable,
        False,
        200,
    )
    assert f"status {status}: Vonage says no" in error.message


# -- SMS: a long text goes as several parts, and every part is judged ------------------------


def part(status: str, number: int) -> dict[str, str]:
    """One entry of ``messages``: sent (``status`` 0, with its own id) or refused."""
    if status == "0":
        return {"to": "447911123456", "message-id": f"part-{number}-id", "status": "0"}
    return {"status": status, "error-text": {"1": "Throttled", "4": "Bad Credentials"}[status]}


def parts(*statuses: str) -> dict[str, Any]:
    """Vonage's answer for a text sent as ``len(statuses)`` parts."""
    return {
        "message-count": str(len(statuses)),
        "messages": [part(status, number) for number, status in enumerate(statuses, 1)],
    }


async def test_every_part_sent_is_delivered_under_the_first_parts_id(
    stub: StubServer, provider: VonageProvider
) -> None:
    stub.respond(200, parts("0", "0", "0"))
    receipt = await provider.send(make_message(), config(stub.url), CREDENTIALS)
    assert (receipt.provider, receipt.message_id) == ("vonage", "part-1-id")


@pytest.mark.parametrize(
    ("statuses", "code", "retryable", "handed_off", "says"),
    [
        # No part sent: a refusal, nothing with a carrier, so the pipeline may fall back.
        (("1", "1"), "1", True, False, "refused all 2 parts"),
        (("4", "4"), "4", False, False, "refused all 2 parts"),
        # One permanent refusal among retryable ones: a retry cannot send the whole text.
        (("1", "4"), "1", False, False, "part 2: status 4: Bad Credentials"),
        # Some parts sent: with the carrier already, so no retry and no fallback (no 2nd code).
        (("1", "0"), "partially_sent", False, True, "sent part 2 of 2"),
        (("0", "4"), "partially_sent", False, True, "refused part 2 (part 2: status 4"),
        (
            ("0", "1", "0"),
            "partially_sent",
            False,
            True,
            "sent parts 1 and 3 of 3 of the SMS and refused part 2",
        ),
    ],
)
async def test_a_multi_part_answer_is_judged_on_every_part(
    stub: StubServer,
    provider: VonageProvider,
    statuses: tuple[str, ...],
    code: str,
    retryable: bool,
    handed_off: bool,
    says: str,
) -> None:
    stub.respond(200, parts(*statuses))
    error = await failure(provider, config(stub.url))
    assert (error.code, error.retryable, error.handed_off, error.status) == (
        code,
        retryable,
        handed_off,
        200,
    )
    assert says in error.message


async def test_an_answer_missing_parts_is_malformed_and_handed_off(
    stub: StubServer, provider: VonageProvider
) -> None:
    """``message-count`` says 2 but one part is listed: what became of the other is unknown."""
    body = parts("0")
    body["message-count"] = "2"
    stub.respond(200, body)
    error = await failure(provider, config(stub.url))
    assert (error.code, error.retryable, error.handed_off) == ("malformed_response", False, True)


def vonage_tenant(base_url: str) -> dict[str, Any]:
    return {
        "acme": {
            "friendly_name": "Acme",
            "message_types": ["sms"],
            "provider": "vonage",
            "provider_settings": {"sender": "Acme", "sms_base_url": base_url},
            "credentials_env": {"api_key": "CRED_API_KEY", "api_secret": "CRED_API_SECRET"},
        }
    }


@pytest.mark.parametrize(
    ("statuses", "outcomes", "error_code"),
    [
        (("0", "0"), [("vonage", "delivered")], None),
        # Nothing reached a carrier: the fallback (the outbox) takes the one code.
        (("1", "1"), [("vonage", "failed"), ("outbox", "delivered")], "1"),
        # Part 2 reached a carrier: no fallback, so the user never gets two codes.
        (("1", "0"), [("vonage", "failed")], "partially_sent"),
        # Part 2 was refused: not "delivered", whatever part 1 did.
        (("0", "4"), [("vonage", "failed")], "partially_sent"),
    ],
)
async def test_multi_part_answers_through_the_pipeline(
    make_pipeline: PipelineFactory,
    stub: StubServer,
    statuses: tuple[str, ...],
    outcomes: list[tuple[str, str]],
    error_code: str | None,
) -> None:
    stub.respond(200, parts(*statuses))
    environ = {"CRED_API_KEY": API_KEY, "CRED_API_SECRET": API_SECRET}
    pipeline = make_pipeline(vonage_tenant(stub.url), environ=environ)
    report = await pipeline.deliver(
        PhoneMessageRequest.create(tenant="acme", recipient="+447911123456", code=CODE)
    )
    assert len(stub.requests) == 1
    assert [(a.provider, a.outcome) for a in report.attempts] == outcomes
    assert report.attempts[0].error_code == error_code
    if outcomes == [("vonage", "failed")]:
        assert report.status == "failed"
        assert report.attempts[0].handed_off
    elif outcomes == [("vonage", "delivered")]:
        assert (report.status, report.attempts[0].message_id) == ("delivered", "part-1-id")


async def test_error_text_is_redacted(stub: StubServer, provider: VonageProvider) -> None:
    """Vonage may echo the parameters; the code and the secret never reach the error."""
    stub.respond(
        200,
        {
            "message-count": "1",
            "messages": [
                {"status": "3", "error-text": f"Invalid text '{CODE} is your code' {API_SECRET}"}
            ],
        },
    )
    error = await failure(provider, config(stub.url))
    assert "******" in error.message


@pytest.mark.parametrize(
    "body",
    [
        {"message-count": "0", "messages": []},
        {"message-count": "1", "messages": [{"status": "0"}]},  # no message-id
        {"message-count": "1", "messages": [{"status": "0", "message-id": ""}]},
        {"messages": "none"},
        ["not", "an", "object"],
    ],
)
async def test_an_unreadable_sms_success_is_malformed_and_handed_off(
    stub: StubServer, provider: VonageProvider, body: Any
) -> None:
    stub.respond(200, body)
    error = await failure(provider, config(stub.url))
    assert (error.code, error.retryable, error.handed_off) == ("malformed_response", False, True)


@pytest.mark.parametrize(
    ("status", "retryable", "handed_off"),
    [(401, False, False), (403, False, False), (429, True, False), (500, True, True)],
)
async def test_sms_http_errors_are_classified_by_status(
    stub: StubServer, provider: VonageProvider, status: int, retryable: bool, handed_off: bool
) -> None:
    stub.respond(status, {"message-count": "1", "messages": [{"status": "4", "error-text": "Bad"}]})
    error = await failure(provider, config(stub.url))
    assert (error.code, error.retryable, error.handed_off) == (str(status), retryable, handed_off)
    assert error.message == f"Vonage answered HTTP {status}: Bad"


# -- voice: errors ---------------------------------------------------------------------------


def problem(status: int, title: str, detail: str) -> dict[str, str]:
    return {
        "type": f"https://developer.nexmo.com/api-errors#{title.lower().replace(' ', '-')}",
        "title": title,
        "detail": detail,
        "instance": "bf0ca0bf927b3b52e3cb03217e1a1ddf",
    }


@pytest.mark.parametrize(
    ("status", "title", "retryable", "handed_off"),
    [
        (400, "Bad Request", False, False),
        (401, "Unauthorized", False, False),
        (402, "Low balance", False, False),
        (403, "Forbidden", False, False),
        (429, "Too Many Requests", True, False),
        (500, "Internal Server Error", True, True),
        (503, "Service Unavailable", True, False),
    ],
)
async def test_voice_errors(
    stub: StubServer,
    provider: VonageProvider,
    status: int,
    title: str,
    retryable: bool,
    handed_off: bool,
) -> None:
    stub.respond(status, problem(status, title, "Vonage says no"))
    error = await failure(provider, config(stub.url), channel="voice")
    assert (error.code, error.retryable, error.handed_off, error.status) == (
        str(status),
        retryable,
        handed_off,
        status,
    )
    assert error.message == f"Vonage answered HTTP {status}: {title} (Vonage says no)"


@pytest.mark.parametrize("body", [{"status": "started"}, {"uuid": ""}, {"uuid": 7}, b"{"])
async def test_an_unreadable_call_answer_is_malformed_and_handed_off(
    stub: StubServer, provider: VonageProvider, body: Any
) -> None:
    stub.respond(201, body, {"Content-Type": "application/json"})
    error = await failure(provider, config(stub.url), channel="voice")
    assert (error.code, error.retryable, error.handed_off) == ("malformed_response", False, True)


def test_an_error_answer_without_json_keeps_its_status() -> None:
    from plugins.vonage.voice import read_voice_response

    with pytest.raises(ProviderError) as caught:
        read_voice_response(HttpResponse(401, {}, b"Unauthorized"), "vonage")
    assert (caught.value.code, caught.value.message) == ("401", "Vonage answered HTTP 401")


# -- registration ----------------------------------------------------------------------------


def test_the_plugin_registers_one_provider_for_both_channels() -> None:
    registered: list[Provider] = []
    register_providers(registered.append, Settings(_env_file=None))
    (provider,) = registered
    assert provider.name == CASE.name == "vonage"
    assert provider.channels == {"sms", "voice"}
    assert isinstance(provider, Provider)
