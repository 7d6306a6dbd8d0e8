"""Every request the plugin sends, through the real SDK, is valid against Twilio's spec.

The requests go over real sockets to a local server that validates them with openapi-core
against ``twilio_api_v2010.json``; each test also checks the request's shape, and the last
tests prove that the validator does reject bad requests (so a pass means something).
"""

from __future__ import annotations

import base64
import dataclasses
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from plugins.twilio import TwilioConfig, TwilioCredentials, TwilioProvider, register_providers
from runtime.errors import ProviderError
from runtime.providers import Provider, ProviderRegistry
from tests.support.openapi_server import OpenApiServer
from tests.support.stub_server import RecordedRequest
from tests.twilio.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CALL_SID,
    FROM_NUMBER,
    MESSAGE_SID,
    MESSAGING_SERVICE_SID,
    RECIPIENT,
    call_resource,
    make_config,
    make_message,
)

pytestmark = pytest.mark.contract

BASIC_AUTH = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
CALLS_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"


def only_request(server: OpenApiServer) -> RecordedRequest:
    assert server.errors == []
    assert len(server.requests) == 1
    return server.requests[0]


def fields(request: RecordedRequest) -> dict[str, str]:
    """The form, one value per field (Twilio's create calls send each field once)."""
    assert all(len(values) == 1 for values in request.form.values()), request.form
    return {name: values[0] for name, values in request.form.items()}


async def test_sms_from_a_number(
    twilio_api: OpenApiServer, provider: TwilioProvider, credentials: TwilioCredentials
) -> None:
    receipt = await provider.send(make_message(), make_config(twilio_api.url), credentials)

    assert dataclasses.asdict(receipt) == {
        "provider": "twilio",
        "message_id": MESSAGE_SID,
        "status": "queued",
    }
    request = only_request(twilio_api)
    assert (request.method, request.path) == ("POST", MESSAGES_PATH)
    assert request.headers["Authorization"] == BASIC_AUTH
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert fields(request) == {"To": RECIPIENT, "From": FROM_NUMBER, "Body": "123456 is your code"}


async def test_sms_through_a_messaging_service_leaves_from_out(
    twilio_api: OpenApiServer, provider: TwilioProvider, credentials: TwilioCredentials
) -> None:
    config = make_config(twilio_api.url, messaging_service_sid=MESSAGING_SERVICE_SID)

    await provider.send(make_message(), config, credentials)

    request = only_request(twilio_api)
    assert request.path == MESSAGES_PATH
    assert request.headers["Authorization"] == BASIC_AUTH
    assert fields(request) == {
        "To": RECIPIENT,
        "MessagingServiceSid": MESSAGING_SERVICE_SID,
        "Body": "123456 is your code",
    }


async def test_status_callback_is_passed_on(
    twilio_api: OpenApiServer, provider: TwilioProvider, credentials: TwilioCredentials
) -> None:
    callback = "https://hooks.example.com/twilio/status?tenant=acme"
    config = make_config(twilio_api.url, status_callback=callback)

    await provider.send(make_message(), config, credentials)

    assert fields(only_request(twilio_api))["StatusCallback"] == callback


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("en", "en-US"),
        ("en_GB", "en-GB"),
        ("en-GB", "en-GB"),
        ("fr", "fr-FR"),
        ("de", "de-DE"),
        ("es", "es-ES"),
        ("pt-BR", "pt-BR"),
        ("pt", "pt-PT"),
        ("it", "it-IT"),
        ("ja", "ja-JP"),
        ("nl", "nl-NL"),
        ("fr-CA", "fr-CA"),
        ("de-LU", "de-DE"),
        ("zh-Hant", "zh-TW"),
        ("xx", "en-US"),
        ("", "en-US"),
    ],
)
async def test_voice_call_says_the_code_twice_in_the_locale_language(
    twilio_api: OpenApiServer,
    provider: TwilioProvider,
    credentials: TwilioCredentials,
    locale: str,
    language: str,
) -> None:
    twilio_api.respond(201, call_resource())
    message = make_message(channel="voice", locale=locale)

    receipt = await provider.send(message, make_config(twilio_api.url), credentials)

    assert (receipt.message_id, receipt.status) == (CALL_SID, "queued")
    request = only_request(twilio_api)
    assert (request.method, request.path) == ("POST", CALLS_PATH)
    assert request.headers["Authorization"] == BASIC_AUTH
    form = fields(request)
    assert set(form) == {"To", "From", "Twiml"}
    assert (form["To"], form["From"]) == (RECIPIENT, FROM_NUMBER)
    response = ET.fromstring(form["Twiml"])
    assert response.tag == "Response"
    [say] = list(response)
    assert say.tag == "Say"
    assert say.attrib == {"language": language, "loop": "2"}
    assert say.text == "Your code is 1. 2. 3. 4. 5. 6."


async def test_voice_uses_from_number_even_with_a_messaging_service(
    twilio_api: OpenApiServer, provider: TwilioProvider, credentials: TwilioCredentials
) -> None:
    twilio_api.respond(201, call_resource())
    config = make_config(twilio_api.url, messaging_service_sid=MESSAGING_SERVICE_SID)

    await provider.send(make_message(channel="voice"), config, credentials)

    form = fields(only_request(twilio_api))
    assert form["From"] == FROM_NUMBER
    assert "MessagingServiceSid" not in form


def post(url: str, form: dict[str, str], headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        url, data=urlencode(form).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
AUTHORISED_FORM = {**FORM, "Authorization": BASIC_AUTH}
SMS_FORM = {"To": RECIPIENT, "From": FROM_NUMBER, "Body": "hi"}


@pytest.mark.parametrize(
    ("path", "form", "headers", "expected"),
    [
        (MESSAGES_PATH, {"Body": "hi"}, AUTHORISED_FORM, "'To' is a required property"),
        (MESSAGES_PATH, SMS_FORM, FORM, "SecurityValidationError"),
        ("/2010-04-01/Accounts/AC123/Messages.json", SMS_FORM, AUTHORISED_FORM, "'AC123'"),
        (CALLS_PATH, {"To": RECIPIENT, "Twiml": "<Response/>"}, AUTHORISED_FORM, "'From'"),
        (
            f"/2010-04-01/Accounts/{ACCOUNT_SID}/Nope.json",
            SMS_FORM,
            AUTHORISED_FORM,
            "PathNotFound",
        ),
    ],
    ids=["sms-without-to", "no-authorization", "bad-account-sid", "call-without-from", "path"],
)
def test_the_validator_rejects_requests_that_break_the_spec(
    twilio_api: OpenApiServer,
    path: str,
    form: dict[str, str],
    headers: dict[str, str],
    expected: str,
) -> None:
    status = post(twilio_api.url + path, form, headers)

    assert status == 422
    assert len(twilio_api.errors) >= 1
    assert expected in "\n".join(twilio_api.errors)


def test_the_validator_accepts_a_valid_request(twilio_api: OpenApiServer) -> None:
    status = post(
        twilio_api.url + MESSAGES_PATH,
        SMS_FORM,
        AUTHORISED_FORM,
    )

    assert status == 201
    assert twilio_api.errors == []


async def test_a_plugin_request_that_breaks_the_spec_is_caught(
    twilio_api: OpenApiServer, provider: TwilioProvider, credentials: TwilioCredentials
) -> None:
    """An SID that skipped validation reaches the wire: the contract check must notice."""
    config = TwilioConfig.model_construct(
        from_number=None,
        messaging_service_sid="MG-not-a-sid",
        base_url=twilio_api.url,
        status_callback=None,
    )

    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(), config, credentials)

    assert caught.value.status == 422
    assert caught.value.handed_off is False
    assert any("'MG-not-a-sid' does not match" in error for error in twilio_api.errors)


def test_register_providers_registers_one_twilio_provider() -> None:
    registry = ProviderRegistry()

    register_providers(registry.register, settings=None)  # type: ignore[arg-type]

    provider = registry.get("twilio")
    assert isinstance(provider, TwilioProvider)
    assert isinstance(provider, Provider)
    assert provider.channels == frozenset({"sms", "voice"})
    assert provider.config_model is TwilioConfig
    assert provider.credentials_model is TwilioCredentials


@pytest.mark.parametrize(
    "fields",
    [
        {"To": RECIPIENT, "From": FROM_NUMBER, "Body": "123456 is your code. Ça & = ? + 🙂"},
        {"To": RECIPIENT, "MediaUrl": ["https://example.test/a b", "https://example.test/c"]},
        {"To": RECIPIENT, "Timeout": 30, "Record": True},
    ],
)
def test_form_body_is_what_urlencode_writes(fields: dict[str, object]) -> None:
    """The transport's fast form encoder writes the SDK's fields exactly as urlencode does."""
    from plugins.twilio.http import _form_body

    assert _form_body(fields) == urlencode(fields, doseq=True).encode()
