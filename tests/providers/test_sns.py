"""Amazon SNS: Publish against a real local moto server, the SigV4 signature recomputed
independently, the Query-protocol request, and the error-code table (PROVIDERS.md §4).

Nothing reaches AWS: moto runs on 127.0.0.1, the stub too, and the AWS_* variables are dummy
values set only inside the tests that start moto.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

import plugins.sns as sns
from plugins.sns import (
    INTERNAL_CODES,
    MISSING_EXTRA,
    PERMANENT_CODES,
    THROTTLING_CODES,
    SnsConfig,
    SnsCredentials,
    SnsProvider,
)
from runtime.errors import ProviderError
from runtime.settings import Settings
from tests.providers.case_sns import (
    ACCESS_KEY_ID,
    MESSAGE_ID,
    REGION,
    SECRET_ACCESS_KEY,
    SESSION_TOKEN,
    XML_HEADERS,
    error_response,
    publish_response,
)
from tests.providers.harness import CODE, RECIPIENT, make_message
from tests.support.stub_server import RecordedRequest, StubServer

CREDENTIALS = SnsCredentials(access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET_ACCESS_KEY)
WITH_TOKEN = SnsCredentials(
    access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET_ACCESS_KEY, session_token=SESSION_TOKEN
)
MOTO_ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture
async def provider() -> AsyncIterator[SnsProvider]:
    made = SnsProvider()
    yield made
    await made.aclose()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


async def failure(
    provider: SnsProvider, config: SnsConfig, credentials: SnsCredentials = WITH_TOKEN
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(), config, credentials)
    for secret in (CODE, ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN):
        assert secret not in str(caught.value)
    return caught.value


# -- a real local SNS (moto) ------------------------------------------------------------------


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        assert host == "127.0.0.1"
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def moto_sms(region: str) -> dict[str, tuple[str, str]]:
    """The SMS moto's SNS backend recorded in ``region``: message id -> (number, text)."""
    from moto.sns.models import sns_backends

    return dict(sns_backends[MOTO_ACCOUNT][region].sms_messages)


@pytest.mark.parametrize("credentials", [CREDENTIALS, WITH_TOKEN], ids=["keys", "session"])
async def test_moto_records_the_published_sms(
    moto_url: str, provider: SnsProvider, credentials: SnsCredentials
) -> None:
    config = SnsConfig(region=REGION, base_url=moto_url, sender_id="Acme")
    receipt = await provider.send(make_message(), config, credentials)
    assert receipt.provider == "sns"
    assert receipt.message_id
    assert moto_sms(REGION)[receipt.message_id] == (RECIPIENT, f"{CODE} is your code")


async def test_moto_routes_by_the_signed_region(moto_url: str, provider: SnsProvider) -> None:
    """moto picks the backend from the Authorization header's credential scope."""
    config = SnsConfig(region="ap-southeast-2", base_url=moto_url)
    receipt = await provider.send(make_message(), config, CREDENTIALS)
    assert receipt.message_id in moto_sms("ap-southeast-2")
    assert receipt.message_id not in moto_sms(REGION)


async def test_moto_refuses_a_number_that_is_not_e164(moto_url: str, provider: SnsProvider) -> None:
    config = SnsConfig(region=REGION, base_url=moto_url)
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(recipient="+0123"), config, CREDENTIALS)
    error = caught.value
    assert (error.code, error.retryable, error.handed_off, error.status) == (
        "InvalidParameter",
        False,
        False,
        400,
    )
    assert "E164" in error.message


# -- the request --------------------------------------------------------------------------


def single(form: dict[str, list[str]]) -> dict[str, str]:
    assert all(len(values) == 1 for values in form.values()), form
    return {name: values[0] for name, values in form.items()}


async def test_the_publish_request(provider: SnsProvider, stub: StubServer) -> None:
    stub.respond(200, publish_response(), XML_HEADERS)
    receipt = await provider.send(
        make_message(), SnsConfig(region=REGION, base_url=stub.url), CREDENTIALS
    )
    assert receipt.message_id == MESSAGE_ID
    (sent,) = stub.requests
    assert (sent.method, sent.path, sent.query) == ("POST", "/", {})
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert single(sent.form) == {
        "Action": "Publish",
        "Version": "2010-03-31",
        "PhoneNumber": RECIPIENT,
        "Message": f"{CODE} is your code",
        "MessageAttributes.entry.1.Name": "AWS.SNS.SMS.SMSType",
        "MessageAttributes.entry.1.Value.DataType": "String",
        "MessageAttributes.entry.1.Value.StringValue": "Transactional",
    }
    assert b"PhoneNumber=%2B447911123456" in sent.body  # E.164, the + encoded
    assert "X-Amz-Security-Token" not in sent.headers


async def test_sender_id_origination_number_and_sms_type(
    provider: SnsProvider, stub: StubServer
) -> None:
    stub.respond(200, publish_response(), XML_HEADERS)
    config = SnsConfig(
        region=REGION,
        base_url=stub.url,
        sms_type="Promotional",
        sender_id="Acme2FA",
        origination_number="+447700900123",
    )
    await provider.send(make_message(), config, CREDENTIALS)
    form = single(stub.requests[0].form)
    attributes = {
        form[f"MessageAttributes.entry.{n}.Name"]: (
            form[f"MessageAttributes.entry.{n}.Value.DataType"],
            form[f"MessageAttributes.entry.{n}.Value.StringValue"],
        )
        for n in (1, 2, 3)
    }
    assert attributes == {
        "AWS.SNS.SMS.SMSType": ("String", "Promotional"),
        "AWS.SNS.SMS.SenderID": ("String", "Acme2FA"),
        "AWS.SNS.SMS.OriginationNumber": ("String", "+447700900123"),
    }
    assert "MessageAttributes.entry.4.Name" not in form


def test_base_url_defaults_to_the_regional_endpoint(provider: SnsProvider) -> None:
    config = SnsConfig(region="eu-central-1")
    assert config.base_url is None
    assert config.endpoint == "https://sns.eu-central-1.amazonaws.com"
    request = provider.build_request(make_message(), config, CREDENTIALS)  # built, never sent
    assert request.url == "https://sns.eu-central-1.amazonaws.com/"
    assert "/eu-central-1/sns/aws4_request" in request.headers["Authorization"]


@pytest.mark.parametrize(
    "settings",
    [
        {},  # region is required
        {"region": "Europe"},
        {"region": REGION, "sms_type": "Urgent"},
        {"region": REGION, "sender_id": "TwelveChars1"},
        {"region": REGION, "sender_id": "12345"},  # needs a letter
        {"region": REGION, "sender_id": "Acme Co"},
        {"region": REGION, "origination_number": "447700900123"},  # not E.164
        {"region": REGION, "base_url": "sns.eu-west-1.amazonaws.com"},
        {"region": REGION, "topic_arn": "arn:aws:sns:eu-west-1:1:t"},  # unknown key
    ],
)
async def test_bad_settings_are_a_configuration_error(
    provider: SnsProvider, stub: StubServer, settings: dict[str, str]
) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(), settings, WITH_TOKEN.model_dump(mode="json"))
    assert caught.value.code == "configuration_error"
    assert stub.requests == []


# -- the signature ------------------------------------------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_signature(sent: RecordedRequest, secret: str, region: str) -> str:
    """AWS Signature Version 4 of ``sent`` as AWS computes it, without botocore."""
    authorization = sent.headers["Authorization"]
    signed_headers = authorization.split("SignedHeaders=")[1].split(",")[0]
    timestamp = sent.headers["X-Amz-Date"]
    day = timestamp[:8]
    canonical_headers = "".join(
        f"{name}:{' '.join(sent.headers[name].split())}\n" for name in signed_headers.split(";")
    )
    canonical_request = "\n".join(
        [
            sent.method,
            quote(sent.path, safe="/~"),
            "",  # no query string
            canonical_headers,
            signed_headers,
            hashlib.sha256(sent.body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/sns/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            timestamp,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in (day, region, "sns", "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("credentials", "signed_headers"),
    [
        (CREDENTIALS, "content-type;host;x-amz-date"),
        (WITH_TOKEN, "content-type;host;x-amz-date;x-amz-security-token"),
    ],
    ids=["keys", "session"],
)
async def test_the_sigv4_signature_checks_out(
    provider: SnsProvider, stub: StubServer, credentials: SnsCredentials, signed_headers: str
) -> None:
    stub.respond(200, publish_response(), XML_HEADERS)
    await provider.send(make_message(), SnsConfig(region=REGION, base_url=stub.url), credentials)
    (sent,) = stub.requests
    timestamp = sent.headers["X-Amz-Date"]
    signed_at = datetime.strptime(timestamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - signed_at) < timedelta(minutes=5)
    prefix, _, signature = sent.headers["Authorization"].rpartition(", Signature=")
    assert prefix == (
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{timestamp[:8]}/{REGION}/sns/aws4_request, "
        f"SignedHeaders={signed_headers}"
    )
    assert sent.headers["Host"] == stub.url.removeprefix("http://")
    if credentials.session_token is not None:
        assert sent.headers["X-Amz-Security-Token"] == SESSION_TOKEN
    assert signature == sigv4_signature(sent, SECRET_ACCESS_KEY, REGION)


async def test_the_signature_check_can_fail(provider: SnsProvider, stub: StubServer) -> None:
    """Proof that the recomputation is a real check: a changed body or secret breaks it."""
    stub.respond(200, publish_response(), XML_HEADERS)
    await provider.send(make_message(), SnsConfig(region=REGION, base_url=stub.url), CREDENTIALS)
    (sent,) = stub.requests
    signature = sent.headers["Authorization"].rpartition("Signature=")[2]
    tampered = RecordedRequest(
        sent.method, sent.path, sent.query, sent.headers, sent.body.replace(b"735194", b"000000")
    )
    assert signature != sigv4_signature(tampered, SECRET_ACCESS_KEY, REGION)
    assert signature != sigv4_signature(sent, SECRET_ACCESS_KEY + "x", REGION)
    assert signature != sigv4_signature(sent, SECRET_ACCESS_KEY, "eu-west-2")


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "kind", "retryable", "handed_off"),
    [
        (400, "InvalidParameter", "Sender", False, False),
        (400, "ParameterValueInvalid", "Sender", False, False),
        (400, "InvalidParameterValue", "Sender", False, False),
        (400, "ValidationException", "Sender", False, False),
        (403, "AuthorizationError", "Sender", False, False),
        (403, "InvalidSecurity", "Sender", False, False),
        (404, "NotFound", "Sender", False, False),
        (400, "EndpointDisabled", "Sender", False, False),
        (400, "OptedOut", "Sender", False, False),
        (403, "InvalidClientTokenId", "Sender", False, False),
        (403, "SignatureDoesNotMatch", "Sender", False, False),
        (403, "ExpiredToken", "Sender", False, False),
        (400, "Throttling", "Sender", True, False),
        (400, "ThrottlingException", "Sender", True, False),
        (429, "Throttled", "Sender", True, False),
        (500, "InternalError", "Receiver", True, True),
        (500, "InternalFailure", "Receiver", True, True),
        (503, "ServiceUnavailable", "Receiver", True, False),
        # outside the table: by HTTP status
        (400, "KMSInvalidState", "Sender", False, False),
        (502, "BadGateway", "Receiver", True, True),
    ],
)
async def test_error_codes(
    provider: SnsProvider,
    stub: StubServer,
    status: int,
    code: str,
    kind: str,
    retryable: bool,
    handed_off: bool,
) -> None:
    stub.respond(status, error_response(code, "details from SNS", kind), XML_HEADERS)
    error = await failure(provider, SnsConfig(region=REGION, base_url=stub.url))
    assert (error.code, error.retryable, error.handed_off, error.status) == (
        code,
        retryable,
        handed_off,
        status,
    )
    assert "details from SNS" in error.message


def test_the_tables_do_not_overlap() -> None:
    assert not PERMANENT_CODES & THROTTLING_CODES
    assert not PERMANENT_CODES & INTERNAL_CODES
    assert not THROTTLING_CODES & INTERNAL_CODES


@pytest.mark.parametrize(
    ("status", "code", "handed_off"),
    [(200, "malformed_response", True), (400, "400", False), (500, "500", True)],
)
async def test_xml_with_a_doctype_is_never_parsed(
    provider: SnsProvider, stub: StubServer, status: int, code: str, handed_off: bool
) -> None:
    """No entity expansion: an answer declaring a DOCTYPE or ENTITY is unreadable."""
    hostile = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "ExpandedId">]>'
        "<PublishResponse><PublishResult><MessageId>&x;</MessageId></PublishResult>"
        "</PublishResponse>"
    )
    stub.respond(status, hostile, XML_HEADERS)
    error = await failure(provider, SnsConfig(region=REGION, base_url=stub.url))
    assert (error.code, error.handed_off) == (code, handed_off)


@pytest.mark.parametrize(
    "body",
    [
        "<PublishResponse><PublishResult/></PublishResponse>",
        publish_response(message_id=""),
        "not xml at all",
    ],
    ids=["no-message-id", "empty-message-id", "not-xml"],
)
async def test_a_200_without_a_message_id_is_malformed(
    provider: SnsProvider, stub: StubServer, body: str
) -> None:
    stub.respond(200, body, XML_HEADERS)
    error = await failure(provider, SnsConfig(region=REGION, base_url=stub.url))
    assert (error.code, error.retryable, error.handed_off) == ("malformed_response", False, True)


# -- without the aws extra ----------------------------------------------------------------


@pytest.fixture
def without_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports of botocore fail as if the aws extra were not installed (nothing uninstalled)."""
    monkeypatch.setattr(sns, "_BOTOCORE", None)
    for module in ("botocore", "botocore.auth", "botocore.awsrequest", "botocore.credentials"):
        monkeypatch.setitem(sys.modules, module, None)


@pytest.mark.usefixtures("without_botocore")
async def test_without_botocore_it_registers_but_every_send_is_a_configuration_error(
    provider: SnsProvider, stub: StubServer
) -> None:
    registered: list[Any] = []
    sns.register_providers(registered.append, Settings())
    assert [made.name for made in registered] == ["sns"]
    for _ in range(2):
        error = await failure(provider, SnsConfig(region=REGION, base_url=stub.url))
        assert (error.code, error.message) == ("configuration_error", MISSING_EXTRA)
        assert (error.retryable, error.handed_off) == (False, False)
    assert stub.requests == []


async def test_botocore_debug_logs_never_show_the_session_token(
    provider: SnsProvider, stub: StubServer, caplog: pytest.LogCaptureFixture
) -> None:
    """botocore's signer logs the canonical request, which holds the token, at DEBUG."""
    stub.respond(200, publish_response(), XML_HEADERS)
    with caplog.at_level(logging.DEBUG):
        await provider.send(make_message(), SnsConfig(region=REGION, base_url=stub.url), WITH_TOKEN)
    assert stub.requests[0].headers["X-Amz-Security-Token"] == SESSION_TOKEN
    assert SESSION_TOKEN not in caplog.text
    assert CODE not in caplog.text
