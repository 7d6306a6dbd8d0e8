"""Fixtures for the Twilio plugin: a provider, local servers, messages, Twilio-shaped answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from openapi_core import OpenAPI

from plugins.twilio import TwilioConfig, TwilioCredentials, TwilioProvider
from runtime.providers import PhoneMessage
from tests.support.openapi_server import OpenApiServer, load_spec, spec_path
from tests.support.stub_server import StubServer

# Hex without the digits of CODE, so that a leak check cannot match a SID by chance.
ACCOUNT_SID = "AC" + "ab" * 16
AUTH_TOKEN = "tok" + "e0" * 14 + "fe"
MESSAGING_SERVICE_SID = "MG" + "cd" * 16
MESSAGE_SID = "SM" + "ef" * 16
CALL_SID = "CA" + "fa" * 16
RECIPIENT = "+14155552671"
FROM_NUMBER = "+14155550100"
CODE = "123456"
TWILIO_HOST_URL = "https://api.twilio.com"
TWILIO_SPEC = "twilio_api_v2010.json"


def make_message(**fields: Any) -> PhoneMessage:
    """A rendered SMS for CODE; ``fields`` override (``channel="voice"``, ``timeout=0.3``)."""
    values: dict[str, Any] = {
        "id": "msg-1",
        "tenant": "acme",
        "recipient": RECIPIENT,
        "channel": "sms",
        "purpose": "verification",
        "locale": "en",
        "code": CODE,
        "text": f"{CODE} is your code",
        "timeout": 5.0,  # generous for a loaded CI machine; timeout tests pass their own
    }
    if fields.get("channel") == "voice":
        values["text"] = "Your code is 1. 2. 3. 4. 5. 6."
    values.update(fields)
    return PhoneMessage(**values)


def make_config(base_url: str, **fields: Any) -> TwilioConfig:
    values: dict[str, Any] = {"from_number": FROM_NUMBER, "base_url": base_url}
    values.update(fields)
    return TwilioConfig(**values)


def message_resource(**fields: Any) -> dict[str, Any]:
    """Twilio's 201 answer to Messages.json (shape of the spec's example)."""
    resource: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": "(the body)",
        "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
        "date_sent": None,
        "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": FROM_NUMBER,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": None,
        "sid": MESSAGE_SID,
        "status": "queued",
        "subresource_uris": {},
        "to": RECIPIENT,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{MESSAGE_SID}.json",
    }
    resource.update(fields)
    return resource


def call_resource(**fields: Any) -> dict[str, Any]:
    """Twilio's 201 answer to Calls.json."""
    resource: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "direction": "outbound-api",
        "from": FROM_NUMBER,
        "sid": CALL_SID,
        "status": "queued",
        "to": RECIPIENT,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json",
    }
    resource.update(fields)
    return resource


@pytest.fixture
def credentials() -> TwilioCredentials:
    return TwilioCredentials(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)


@pytest.fixture
async def provider() -> AsyncIterator[TwilioProvider]:
    """A provider whose sessions are closed after the test."""
    twilio = TwilioProvider()
    yield twilio
    await twilio.aclose()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


@pytest.fixture(scope="session")
def twilio_spec() -> OpenAPI:
    """Twilio's 2010 API spec, loaded once per session (it takes seconds)."""
    return load_spec(spec_path(TWILIO_SPEC))


@pytest.fixture
def twilio_api(twilio_spec: OpenAPI) -> Iterator[OpenApiServer]:
    """A local Twilio API that validates every request against the spec."""
    with OpenApiServer(
        twilio_spec, host_url=TWILIO_HOST_URL, status=201, body=message_resource()
    ) as server:
        yield server
