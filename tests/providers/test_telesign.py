"""Telesign: the HMAC signature, request shapes and its error table.

No OpenAPI spec for Telesign exists, so answers are fixtures built from the documented shapes
(``reference_id``, ``status.code``, ``errors[].code``). The signature is checked two ways:
against the published vectors of TeleSign's own SDK tests, and by recomputing it here, with
the standard library only, from what the stub server received.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from plugins.telesign import (
    ERRORS,
    TelesignConfig,
    TelesignCredentials,
    TelesignProvider,
    telesign_signature,
    telesign_voice,
)
from runtime.errors import ProviderError
from runtime.tenants import TomlTenantDirectory
from tests.providers.case_telesign import (
    API_KEY,
    CUSTOMER_ID,
    REFERENCE_ID,
    accepted,
    rejected,
)
from tests.providers.harness import CODE, make_message
from tests.support.stub_server import Body, RecordedRequest, StubServer

CREDENTIALS = TelesignCredentials(customer_id=CUSTOMER_ID, api_key=API_KEY)
DOC = Path(__file__).resolve().parents[2] / "docs" / "providers" / "telesign.md"

FIXED_TIME = 1481739612.0  # Wed, 14 Dec 2016 18:20:12 GMT
FIXED_NONCE = "A1592C6F-E384-4CDB-BC42-C3AB970369E9"


@pytest.fixture
async def provider() -> AsyncIterator[TelesignProvider]:
    made = TelesignProvider(clock=lambda: FIXED_TIME, nonce=lambda: FIXED_NONCE)
    yield made
    await made.aclose()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def settings(stub: StubServer, **fields: Any) -> TelesignConfig:
    return TelesignConfig(base_url=stub.url, **fields)


async def failure(
    provider: TelesignProvider,
    config: Any,
    credentials: Any = CREDENTIALS,
    **message: Any,
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(**message), config, credentials)
    for secret in (CODE, API_KEY, CUSTOMER_ID):
        assert secret not in str(caught.value)
    return caught.value


def form(sent: RecordedRequest) -> dict[str, str]:
    """The form fields of a request, each sent once."""
    fields = parse_qs(sent.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert all(len(values) == 1 for values in fields.values()), fields
    return {name: values[0] for name, values in fields.items()}


# -- the signature -------------------------------------------------------------------------

SDK_KEY = "EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8kunZ2zU1YWaUw/0wV6xfw=="


@pytest.mark.parametrize(
    ("method", "content_type", "body", "expected"),
    [
        (
            "POST",
            "application/x-www-form-urlencoded",
            "test=param",
            "2xVlmbrxLjYrrPun3G3WMNG6Jon4yKcTeOoK9DjXJ/Q=",
        ),
        (
            "POST",
            "application/x-www-form-urlencoded",
            "test=%CF%BF",
            "h8d4I0RTxErbxYXuzCOtNqb/f0w3Ck8e5SEkGNj01+8=",
        ),
        ("GET", "", "", "aUm7I+9GKl3ww7PNeeJntCT0iS7b+EmRKEE4LnRzChQ="),
    ],
)
def test_signature_matches_the_sdk_test_vectors(
    method: str, content_type: str, body: str, expected: str
) -> None:
    """The expected values are those of TeleSign/python_telesign test/test_rest.py."""
    signature = telesign_signature(
        SDK_KEY,
        method=method,
        content_type=content_type,
        date="Wed, 14 Dec 2016 18:20:12 GMT",
        nonce=FIXED_NONCE,
        body=body,
        resource="/v1/resource",
    )
    assert signature == expected


def recompute(sent: RecordedRequest) -> str:
    """The TSA signature of ``sent``, rebuilt from its own headers and body."""
    to_sign = "\n".join(
        [
            sent.method,
            sent.headers["Content-Type"],
            sent.headers["Date"],
            f"x-ts-auth-method:{sent.headers['x-ts-auth-method']}",
            f"x-ts-nonce:{sent.headers['x-ts-nonce']}",
            sent.body.decode("utf-8"),
            sent.path,
        ]
    )
    key = base64.b64decode(API_KEY)
    return base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()


@pytest.mark.parametrize("channel", ["sms", "voice"])
async def test_hmac_headers_sign_what_is_sent(
    stub: StubServer, provider: TelesignProvider, channel: str
) -> None:
    stub.respond(200, accepted(290, "Message in progress"))
    await provider.send(make_message(channel=channel), settings(stub), CREDENTIALS)
    (sent,) = stub.requests
    assert sent.headers["Date"] == "Wed, 14 Dec 2016 18:20:12 GMT"
    assert sent.headers["x-ts-nonce"] == FIXED_NONCE
    assert sent.headers["x-ts-auth-method"] == "HMAC-SHA256"
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "x-ts-date" not in sent.headers  # the SDK signs Date and sends no x-ts-date
    assert sent.headers["Authorization"] == f"TSA {CUSTOMER_ID}:{recompute(sent)}"


async def test_each_request_gets_a_fresh_nonce_and_the_current_date(stub: StubServer) -> None:
    stub.respond(200, accepted(290, "Message in progress"))
    made = TelesignProvider()
    try:
        for _ in range(2):
            await made.send(make_message(), settings(stub), CREDENTIALS)
    finally:
        await made.aclose()
    first, second = stub.requests
    assert first.headers["x-ts-nonce"] != second.headers["x-ts-nonce"]
    assert re.fullmatch(r"[0-9a-f-]{36}", first.headers["x-ts-nonce"])
    assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT", first.headers["Date"])
    for sent in (first, second):
        assert sent.headers["Authorization"] == f"TSA {CUSTOMER_ID}:{recompute(sent)}"


async def test_a_tampered_body_would_not_verify(
    stub: StubServer, provider: TelesignProvider
) -> None:
    """Proof that the recomputation can fail: another body gives another signature."""
    stub.respond(200, accepted(290, "Message in progress"))
    await provider.send(make_message(), settings(stub), CREDENTIALS)
    (sent,) = stub.requests
    tampered = RecordedRequest(
        sent.method, sent.path, sent.query, sent.headers, sent.body.replace(b"OTP", b"MKT")
    )
    assert recompute(tampered) != recompute(sent)
    assert sent.headers["Authorization"] != f"TSA {CUSTOMER_ID}:{recompute(tampered)}"


async def test_basic_auth(stub: StubServer, provider: TelesignProvider) -> None:
    stub.respond(200, accepted(290, "Message in progress"))
    await provider.send(make_message(), settings(stub, auth_method="basic"), CREDENTIALS)
    (sent,) = stub.requests
    pair = base64.b64decode(sent.headers["Authorization"].removeprefix("Basic "))
    assert pair.decode() == f"{CUSTOMER_ID}:{API_KEY}"
    assert "x-ts-nonce" not in sent.headers


async def test_an_api_key_that_is_not_base64_cannot_sign(
    stub: StubServer, provider: TelesignProvider
) -> None:
    credentials = TelesignCredentials(customer_id=CUSTOMER_ID, api_key="not-base64!")
    error = await failure(provider, settings(stub), credentials)
    assert (error.code, error.handed_off) == ("configuration_error", False)
    assert stub.requests == []


# -- requests ------------------------------------------------------------------------------


async def test_sms_request(stub: StubServer, provider: TelesignProvider) -> None:
    stub.respond(200, accepted(290, "Message in progress"))
    receipt = await provider.send(make_message(), settings(stub), CREDENTIALS)
    assert (receipt.provider, receipt.message_id, receipt.status) == (
        "telesign",
        REFERENCE_ID,
        "290",
    )
    (sent,) = stub.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messaging")
    assert form(sent) == {
        "phone_number": "447911123456",
        "message": f"{CODE} is your code",
        "message_type": "OTP",
        "external_id": "msg-1",
    }


async def test_sms_sender_id(stub: StubServer, provider: TelesignProvider) -> None:
    stub.respond(200, accepted(290, "Message in progress"))
    await provider.send(make_message(), settings(stub, sender_id="Acme"), CREDENTIALS)
    assert form(stub.requests[0])["sender_id"] == "Acme"


async def test_voice_request(stub: StubServer, provider: TelesignProvider) -> None:
    stub.respond(200, accepted(103, "Call in progress"))
    receipt = await provider.send(make_message(channel="voice"), settings(stub), CREDENTIALS)
    assert (receipt.message_id, receipt.status) == (REFERENCE_ID, "103")
    (sent,) = stub.requests
    assert (sent.method, sent.path) == ("POST", "/v1/voice")
    assert form(sent) == {
        "phone_number": "447911123456",
        "message": "Your code is 7. 3. 5. 1. 9. 4.",
        "message_type": "OTP",
        "voice": "f-en-GB",
    }


async def test_a_configured_voice_wins(stub: StubServer, provider: TelesignProvider) -> None:
    stub.respond(200, accepted(103, "Call in progress"))
    config = settings(stub, voice="f-en-AU")
    await provider.send(make_message(channel="voice", locale="fr-FR"), config, CREDENTIALS)
    assert form(stub.requests[0])["voice"] == "f-en-AU"


@pytest.mark.parametrize(
    ("locale", "voice"),
    [
        ("en-GB", "f-en-GB"),
        ("en_IN", "f-en-IN"),
        ("en", "f-en-US"),
        ("fr-BE", "f-fr-FR"),
        ("fr_CA.UTF-8", "f-fr-CA"),
        ("pt-BR", "f-pt-BR"),
        ("pt", "f-pt-PT"),
        ("es-AR", "f-es-ES"),
        ("zh-Hant", "f-zh-TW"),
        ("nb", "f-nb-NO"),
        ("de-DE", "f-en-US"),  # Telesign has no German voice
        ("", "f-en-US"),
    ],
)
def test_voice_from_locale(locale: str, voice: str) -> None:
    assert telesign_voice(locale) == voice


@pytest.mark.parametrize("bad", [{"voice": "en-US"}, {"auth_method": "digest"}, {"sender_id": ""}])
def test_bad_settings_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        TelesignConfig(**bad)


# -- answers -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(ERRORS.permanent))
async def test_account_and_auth_codes_are_permanent_refusals(
    stub: StubServer, provider: TelesignProvider, code: str
) -> None:
    stub.respond(401, rejected(int(code), "Not authorized"))
    error = await failure(provider, settings(stub))
    assert (error.code, error.retryable, error.handed_off, error.status) == (
        code,
        False,
        False,
        401,
    )


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable", "handed_off"),
    [
        # the account codes decide, not the HTTP status
        (500, rejected(-30006, "Invalid Signature", 501), "-30006", False, False),
        (200, {"status": {"code": 501}, "errors": [{"code": -30015}]}, "-30015", False, False),
        # a bad request, "Transaction not attempted"
        (400, rejected(-40006, "Bad request", 500), "-40006", False, False),
        # an HTTP 500 that Telesign says it did not attempt: not handed off, retryable
        (
            500,
            {"status": {"code": 500, "description": "Transaction not attempted"}},
            "500",
            True,
            False,
        ),
        (500, rejected(-90001, "System error", 500), "-90001", True, False),
        # no Telesign code: the HTTP status classifies
        (429, {"status": {"description": "Too many requests"}}, "429", True, False),
        (503, {"status": {"description": "System unavailable"}}, "503", True, False),
        (500, {"errors": [{"code": -90001, "description": "System error"}]}, "-90001", True, True),
        (502, b"", "502", True, True),
        (404, ["not", "an", "object"], "404", False, False),
    ],
)
async def test_error_answers(
    stub: StubServer,
    provider: TelesignProvider,
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


@pytest.mark.parametrize("body", [{"status": {"code": 290}}, {}])
async def test_a_2xx_without_reference_id_is_malformed_and_handed_off(
    stub: StubServer, provider: TelesignProvider, body: dict[str, Any]
) -> None:
    stub.respond(200, body)
    error = await failure(provider, settings(stub))
    assert (error.code, error.retryable, error.handed_off) == ("malformed_response", False, True)


# -- documentation -------------------------------------------------------------------------


def test_the_doc_lists_every_setting_credential_and_code() -> None:
    text = DOC.read_text("utf-8")
    intro = text.split("\n## ", 1)[0]
    assert "`plugins.telesign`" in intro
    assert "`telesign`" in intro
    fields = [*TelesignConfig.model_fields, *TelesignCredentials.model_fields]
    generic = ["timeout", "connect_timeout", "connection_error", "disconnected"]
    generic += ["malformed_response", "configuration_error"]
    for name in [*fields, *ERRORS.permanent, *generic]:
        assert f"`{name}`" in text, name


def test_the_doc_tenant_example_validates() -> None:
    text = DOC.read_text("utf-8")
    (block,) = re.findall(r"^```toml\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    tenants = TomlTenantDirectory.from_mapping(tomllib.loads(block), source="telesign.md")
    tenant = tenants.get("acme")
    assert tenant.provider == "telesign"
    TelesignConfig.model_validate(tenant.provider_settings)
    assert set(tenant.credentials_env) == set(TelesignCredentials.model_fields)
