"""Mitto: requests valid against its OpenAPI spec, and its ``responseCode`` table."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest

from plugins.mitto import MittoConfig, MittoCredentials, MittoProvider
from runtime.errors import ProviderError
from tests.providers.case_mitto import API_KEY, CASE
from tests.providers.harness import CODE, make_message
from tests.support.openapi_server import OpenApiServer, load_spec, spec_path
from tests.support.stub_server import StubServer

CREDENTIALS = MittoCredentials(api_key=API_KEY)


@pytest.fixture
async def provider() -> AsyncIterator[MittoProvider]:
    made = MittoProvider()
    yield made
    await made.aclose()


@pytest.fixture
def mitto_api() -> Iterator[OpenApiServer]:
    spec = load_spec(spec_path("mitto_sms.yml"))
    ok = CASE.ok["sms"]
    with OpenApiServer(
        spec, host_url="https://rest.mittoapi.net", status=ok.status, body=ok.body
    ) as server:
        yield server


@pytest.mark.contract
async def test_sms_request_is_valid_against_the_spec(
    mitto_api: OpenApiServer, provider: MittoProvider
) -> None:
    config = MittoConfig(sender="Acme", base_url=mitto_api.url, path="/sms")
    receipt = await provider.send(make_message(), config, CREDENTIALS)
    assert receipt.message_id == CASE.message_id
    assert mitto_api.errors == []
    (sent,) = mitto_api.requests
    assert sent.path == "/sms"
    assert sent.headers["X-Mitto-API-Key"] == API_KEY
    assert orjson.loads(sent.body) == {
        "from": "Acme",
        "to": "447911123456",
        "text": f"{CODE} is your code",
    }


@pytest.mark.contract
@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (f"Votre code : {CODE} €", None),  # fits the GSM alphabet (its extension too)
        (f"Ваш код {CODE}", "Unicode"),  # Cyrillic: Mitto would send "?" for each letter
        (f"Twój kod to {CODE}", "Unicode"),  # ó is not GSM (ò is)
    ],
)
async def test_a_text_outside_the_gsm_alphabet_asks_for_unicode(
    mitto_api: OpenApiServer, provider: MittoProvider, text: str, encoding: str | None
) -> None:
    """Mitto's spec: "If the message contains characters outside the range of the GSM Standard
    and Extended tables, then you need to set the character encoding to Unicode"."""
    config = MittoConfig(sender="Acme", base_url=mitto_api.url, path="/sms")
    await provider.send(make_message(text=text), config, CREDENTIALS)
    assert mitto_api.errors == []
    (sent,) = mitto_api.requests
    assert orjson.loads(sent.body).get("type") == encoding


@pytest.mark.contract
async def test_the_validator_rejects_a_request_without_text(mitto_api: OpenApiServer) -> None:
    """Proof that the contract test can fail: the spec requires ``text``."""
    from tests.support.stub_server import RecordedRequest

    bad = RecordedRequest(
        method="POST",
        path="/sms",
        query={},
        headers={"content-type": "application/json", "x-mitto-api-key": API_KEY},
        body=orjson.dumps({"from": "Acme", "to": "447911123456"}),
    )
    assert mitto_api.validate(bad)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


@pytest.mark.parametrize(
    ("response_code", "retryable"),
    [
        (1, True),  # internal error
        (2, False),  # invalid type
        (3, False),  # empty message
        (4, False),  # invalid text
        (5, False),  # empty sender
        (6, False),  # invalid sender
        (7, False),  # empty receiver
        (8, False),  # invalid receiver: no retry makes the number valid
        (9, True),  # not in Mitto's table: worth another try
    ],
)
async def test_response_codes(
    stub: StubServer, provider: MittoProvider, response_code: int, retryable: bool
) -> None:
    stub.respond(200, {"responseCode": response_code, "responseText": "no"})
    with pytest.raises(ProviderError) as caught:
        await provider.send(
            make_message(), MittoConfig(sender="Acme", base_url=stub.url), CREDENTIALS
        )
    assert caught.value.code == str(response_code)
    assert (caught.value.retryable, caught.value.handed_off) == (retryable, False)


async def test_a_400_without_body_is_permanent(stub: StubServer, provider: MittoProvider) -> None:
    """The spec's 400 has no body: the status alone classifies it."""
    stub.respond(400)
    with pytest.raises(ProviderError) as caught:
        await provider.send(
            make_message(), MittoConfig(sender="Acme", base_url=stub.url), CREDENTIALS
        )
    assert (caught.value.code, caught.value.retryable, caught.value.handed_off) == (
        "400",
        False,
        False,
    )


def test_the_default_endpoint_is_mittos_current_reference() -> None:
    """Mitto's SMS API reference: ``POST https://<base endpoint>/sms`` with the geo-resolved
    ``https://rest.mittoapi.net``; its OpenAPI spec has the same server and path."""
    settings = MittoConfig(sender="Acme")
    assert settings.base_url + settings.path == "https://rest.mittoapi.net/sms"
    spec = spec_path("mitto_sms.yml").read_text("utf-8")
    assert re.search(rf"^servers:\n  - url: {re.escape(settings.base_url)}$", spec, re.M)
    assert re.search(rf"^paths:\n  {re.escape(settings.path)}:$", spec, re.M)
