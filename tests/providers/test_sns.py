"""Amazon SNS: Publish against a real local moto server, the Query-protocol request, our
SigV4 signer proved byte for byte against botocore's SigV4Auth at frozen times (moto checks no
signature), the credentials (static keys, or botocore's default chain), and the error-code
table (docs/providers/sns.md).

Nothing reaches AWS: moto runs on 127.0.0.1, the stub too, and the AWS_* variables are dummy
values set only inside the tests that need them (with the metadata service disabled).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import logging
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import plugins.sns as sns
import plugins.sns.provider as sns_provider
from plugins.sns import (
    COMMON_ERRORS,
    INTERNAL_CODES,
    MISSING_EXTRA,
    NO_CREDENTIALS,
    PERMANENT_CODES,
    PUBLISH_ERRORS,
    THROTTLING_CODES,
    SnsConfig,
    SnsCredentials,
    SnsProvider,
    amz_date,
    form_encode,
    parse_xml,
    published_message_id,
    sigv4_headers,
    target,
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
    provider: SnsProvider,
    config: SnsConfig,
    credentials: SnsCredentials | dict[str, str] = WITH_TOKEN,
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(), config, credentials)
    for secret in (CODE, ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN, "chain-secret"):
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
        origination_number="+447911123000",
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
        "AWS.SNS.SMS.OriginationNumber": ("String", "+447911123000"),
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
    """AWS Signature Version 4 of ``sent`` as AWS computes it, written out step by step."""
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
    """The request as the server received it (headers as aiohttp sent them) verifies."""
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
    assert "X-Amz-Content-SHA256" not in sent.headers  # botocore sends none for SNS either
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


# -- the signature, byte for byte against botocore's SigV4Auth --------------------------------

FROZEN = datetime(2026, 11, 28, 9, 30, 15, tzinfo=UTC)
SIGNING_CASES = {
    "keys-eu-west-1": (REGION, None, "https://sns.eu-west-1.amazonaws.com", RECIPIENT, "735194"),
    "session-us-east-1": (
        "us-east-1",
        SESSION_TOKEN,
        "https://sns.us-east-1.amazonaws.com",
        "+14155550123",
        "Your code is 7. 3. 5. 1. 9. 4.",
    ),
    "unicode-ap-southeast-2": (
        "ap-southeast-2",
        None,
        "https://sns.ap-southeast-2.amazonaws.com",
        "+61412345678",
        "Ваш код: 735194 ✓ — ne le partagez pas 🙂",
    ),
    "reserved-chars-china": (
        "cn-north-1",
        SESSION_TOKEN + "/+=",
        "https://sns.cn-north-1.amazonaws.com.cn",
        "+8613812345678",
        "a+b=c&d/e?f#g %20 ~tilde_ '\"<>*",
    ),
    "local-port-path": (
        "eu-central-1",
        None,
        "http://127.0.0.1:4566/sns%20api/./~v1//x/..",
        "+4915123456789",
        "  leading and  double  spaces  ",
    ),
    "default-port-uppercase-host": (
        "eu-west-2",
        SESSION_TOKEN,
        "https://SNS.EU-WEST-2.AMAZONAWS.COM:443",
        "+447700900123",
        "code\n735194\ttab",
    ),
    "ipv6": ("us-west-2", None, "http://[::1]:8080", "+12025550143", "735194"),
    "token-with-whitespace": (
        "sa-east-1",
        "  spaced   token  ",
        "https://vpce-0123.sns.sa-east-1.vpce.amazonaws.com",
        "+5511987654321",
        "735194",
    ),
}


def botocore(module: str) -> Any:
    """``botocore.<module>`` (untyped: imported as Any)."""
    return importlib.import_module(f"botocore.{module}")


def freeze_botocore(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """botocore's SigV4Auth.add_auth takes its timestamp from
    ``botocore.auth.get_current_datetime()`` (naive UTC, imported from botocore.compat)."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore("auth"), "get_current_datetime", lambda *args, **kwargs: naive)


def botocore_signed(
    url: str, body: bytes, region: str, token: str | None, secret: str = SECRET_ACCESS_KEY
) -> tuple[dict[str, str], dict[str, str]]:
    """(the headers botocore's SigV4Auth put on the request, every header it signed, by the
    lowercase names its Authorization lists, with the values it signed)."""
    request = botocore("awsrequest").AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": sns.CONTENT_TYPE}
    )
    credentials = botocore("credentials").Credentials(ACCESS_KEY_ID, secret, token)
    signer = botocore("auth").SigV4Auth(credentials, "sns", region)
    signer.add_auth(request)
    headers: dict[str, str] = dict(request.headers.items())
    names = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    values = signer.headers_to_sign(request)  # with the host it derives from the URL
    return headers, {name: values[name] for name in names}


def lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@pytest.mark.parametrize(
    ("region", "token", "base_url", "recipient", "text"),
    SIGNING_CASES.values(),
    ids=SIGNING_CASES.keys(),
)
def test_build_request_signs_exactly_as_botocore(
    monkeypatch: pytest.MonkeyPatch,
    provider: SnsProvider,
    region: str,
    token: str | None,
    base_url: str,
    recipient: str,
    text: str,
) -> None:
    monkeypatch.setattr(sns_provider, "_now", FROZEN.timestamp)
    freeze_botocore(monkeypatch, FROZEN)
    credentials = SnsCredentials(
        access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET_ACCESS_KEY, session_token=token
    )
    config = SnsConfig(region=region, base_url=base_url, sender_id="Acme")
    ours = provider.build_request(make_message(recipient=recipient, text=text), config, credentials)
    theirs, signed = botocore_signed(ours.url, ours.body, region, token)

    assert lower(ours.headers)["authorization"] == theirs["Authorization"]
    assert theirs["X-Amz-Date"] == "20261128T093015Z"
    # every header botocore signed is sent by us with the very same value
    assert signed.keys() == {"content-type", "host", "x-amz-date"} | (
        {"x-amz-security-token"} if token is not None else set()
    )
    assert {name: lower(ours.headers)[name] for name in signed} == signed
    # and we send nothing else (botocore leaves Host to the HTTP client; we set what we signed)
    assert lower(ours.headers) == lower(theirs) | {"host": signed["host"]}


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 28, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 11, 29, 0, 0, 0, tzinfo=UTC),  # a new day: a new signing key
        datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC),
        datetime(2028, 2, 29, 12, 0, 0, 999_000, tzinfo=UTC),  # leap day, fraction dropped
    ],
    ids=str,
)
@pytest.mark.parametrize("secret", [SECRET_ACCESS_KEY, "another+secret/KEY=="])
def test_the_cached_signing_key_follows_the_day_and_the_secret(
    monkeypatch: pytest.MonkeyPatch, moment: datetime, secret: str
) -> None:
    """Signed back to back at several moments with two secrets, all through the key cache."""
    freeze_botocore(monkeypatch, moment)
    where = target("https://sns.eu-west-1.amazonaws.com")
    body = b"Action=Publish&Message=735194"
    ours = sigv4_headers(
        where,
        body,
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=secret,
        session_token=None,
        date=amz_date(moment.timestamp()),
    )
    theirs, _ = botocore_signed(where.url, body, REGION, None, secret)
    assert ours["Authorization"] == theirs["Authorization"]
    again = sigv4_headers(  # the cached keyed HMAC is copied, never consumed
        where,
        body,
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=secret,
        session_token=None,
        date=amz_date(moment.timestamp()),
    )
    assert again == ours
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"]


def test_the_botocore_comparison_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proof the comparison is a real one: botocore at another second, or with another
    secret or region, signs differently."""
    where = target("https://sns.eu-west-1.amazonaws.com")
    body = b"Action=Publish&Message=735194"
    ours = sigv4_headers(
        where,
        body,
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        session_token=None,
        date=amz_date(FROZEN.timestamp()),
    )["Authorization"]
    freeze_botocore(monkeypatch, FROZEN)
    assert ours == botocore_signed(where.url, body, REGION, None)[0]["Authorization"]
    assert ours != botocore_signed(where.url, body, REGION, None, "x")[0]["Authorization"]
    assert ours != botocore_signed(where.url, body, "eu-west-2", None)[0]["Authorization"]
    assert ours != botocore_signed(where.url, body + b"0", REGION, None)[0]["Authorization"]
    freeze_botocore(monkeypatch, FROZEN + timedelta(seconds=1))
    assert ours != botocore_signed(where.url, body, REGION, None)[0]["Authorization"]


def test_amz_date_is_utc_to_the_second() -> None:
    assert amz_date(FROZEN.timestamp()) == "20261128T093015Z"
    assert amz_date(FROZEN.timestamp() + 0.999) == "20261128T093015Z"
    assert amz_date(FROZEN.timestamp() + 1) == "20261128T093016Z"
    assert amz_date(0) == "19700101T000000Z"


# -- errors -------------------------------------------------------------------------------


def test_the_error_table_holds_only_documented_codes() -> None:
    """Every Publish error of SNS's model (botocore's copy of the API reference) is in the
    table, and the table has no SNS code beyond them but the errors common to AWS APIs."""
    session = pytest.importorskip("botocore.session")
    model = session.get_session().get_service_model("sns")
    publish = {
        shape.metadata.get("error", {}).get("code", shape.name)
        for shape in model.operation_model("Publish").error_shapes
    }
    assert publish == PUBLISH_ERRORS
    assert PERMANENT_CODES | THROTTLING_CODES | INTERNAL_CODES == PUBLISH_ERRORS | COMMON_ERRORS
    assert "OptedOut" not in PUBLISH_ERRORS | COMMON_ERRORS


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
        (400, "KMSInvalidState", "Sender", False, False),
        (400, "PlatformApplicationDisabled", "Sender", False, False),
        (403, "InvalidClientTokenId", "Sender", False, False),
        (403, "SignatureDoesNotMatch", "Sender", False, False),
        (403, "ExpiredToken", "Sender", False, False),
        (400, "Throttling", "Sender", True, False),
        (400, "ThrottlingException", "Sender", True, False),
        (400, "ThrottledException", "Sender", True, False),
        (400, "KMSThrottling", "Sender", True, False),
        (429, "Throttled", "Sender", True, False),  # SNS's ThrottledException shape's code
        (400, "Throttled", "Sender", True, False),  # by its code, whatever the status
        (500, "InternalError", "Receiver", True, True),
        (500, "InternalFailure", "Receiver", True, True),
        (503, "ServiceUnavailable", "Receiver", True, False),
        # outside the table: by HTTP status
        (400, "OptedOut", "Sender", False, False),  # not a Publish error: no entry of its own
        (429, "SomethingNew", "Sender", True, False),
        (400, "SomethingNew", "Sender", False, False),
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


# -- reading the answer: the fast path and the XML parse agree ------------------------------

MOTO_STYLE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">\n'
    f"  <PublishResult>\n    <MessageId>{MESSAGE_ID}</MessageId>\n  </PublishResult>\n"
    "  <ResponseMetadata>\n    <RequestId>384ac68d-3775-11df-8963-01868b7c937a</RequestId>\n"
    "  </ResponseMetadata>\n</PublishResponse>\n"
)
PREFIXED = (
    publish_response()
    .replace("<MessageId>", '<s:MessageId xmlns:s="urn:example">')
    .replace("</MessageId>", "</s:MessageId>")
)
FIFO_STYLE = publish_response().replace(
    "</MessageId>", "</MessageId><SequenceNumber>10000000000000003000</SequenceNumber>"
)


@pytest.mark.parametrize(
    "body", [publish_response(), MOTO_STYLE, FIFO_STYLE], ids=["sns", "moto", "sequence"]
)
def test_the_fast_read_agrees_with_the_xml_parse(body: str) -> None:
    assert published_message_id(body.encode()) == MESSAGE_ID
    assert parse_xml(body.encode())["MessageId"] == MESSAGE_ID


@pytest.mark.parametrize(
    "body",
    [
        PREFIXED,  # a prefix
        publish_response(message_id=f" {MESSAGE_ID} "),  # whitespace around the id
        publish_response(message_id=f"<![CDATA[{MESSAGE_ID}]]>"),
        publish_response(message_id="a&amp;b"),
        publish_response().replace("<ResponseMetadata>", "<!-- c --><ResponseMetadata>"),
        publish_response().replace("</PublishResponse>", ""),  # cut short
        publish_response(message_id=""),
        error_response("InvalidParameter", "no"),
        "<PublishResponse><PublishResult/></PublishResponse>",
        "not xml at all",
    ],
)
def test_any_other_answer_is_left_to_the_xml_parse(body: str) -> None:
    assert published_message_id(body.encode()) is None


@pytest.mark.parametrize(
    ("body", "message_id"),
    [
        (PREFIXED, MESSAGE_ID),
        (publish_response(message_id=f" {MESSAGE_ID} "), MESSAGE_ID),
        (publish_response(message_id=f"<![CDATA[{MESSAGE_ID}]]>"), MESSAGE_ID),
        (publish_response(message_id="a&amp;b"), "a&b"),
    ],
    ids=["prefix", "whitespace", "cdata", "entity"],
)
async def test_a_success_off_the_fast_path_is_still_read(
    provider: SnsProvider, stub: StubServer, body: str, message_id: str
) -> None:
    stub.respond(200, body, XML_HEADERS)
    receipt = await provider.send(
        make_message(), SnsConfig(region=REGION, base_url=stub.url), CREDENTIALS
    )
    assert receipt.message_id == message_id


def test_form_encode_is_quote_with_the_unreserved_characters_safe() -> None:
    texts = [
        "".join(map(chr, range(0, 0x250))),
        "Ваш код: 735194 ✓ — 🙂",
        "a+b=c&d/e?f#g %20 ~tilde_ '\"<>*",
        "",
    ]
    for text in texts:
        assert form_encode(text) == quote(text, safe="-_.~")


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


# -- credentials: static, or botocore's default chain ---------------------------------------


@pytest.mark.parametrize(
    "credentials",
    [
        {"access_key_id": ACCESS_KEY_ID},
        {"secret_access_key": SECRET_ACCESS_KEY},
        {"session_token": SESSION_TOKEN},
        {"secret_access_key": SECRET_ACCESS_KEY, "session_token": SESSION_TOKEN},
        {"access_key_id": "short", "secret_access_key": SECRET_ACCESS_KEY},
    ],
    ids=["key-id-only", "secret-only", "token-only", "secret-and-token", "bad-key-id"],
)
async def test_static_keys_are_both_or_neither(
    provider: SnsProvider, stub: StubServer, credentials: dict[str, str]
) -> None:
    error = await failure(provider, SnsConfig(region=REGION, base_url=stub.url), credentials)
    assert (error.code, error.retryable, error.handed_off) == ("configuration_error", False, False)
    assert "credentials" in error.message
    assert stub.requests == []


CHAIN_KEY_ID = "AKIACHAINEXAMPLE0001"
CHAIN_SECRET = "chain-secret-from-the-environment"
CHAIN_TOKEN = "chain-session-token-IQoJb3JpZ2luX2Vj"
# Variables that would point botocore's chain somewhere else than the test's environment.
AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_CREDENTIAL_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
)


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment where botocore's chain finds only what a test sets: empty config and
    credential files, and no instance metadata service (nothing probes 169.254.169.254)."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, file in {
        "AWS_CONFIG_FILE": "config",
        "AWS_SHARED_CREDENTIALS_FILE": "credentials",
        "BOTO_CONFIG": "boto.cfg",
    }.items():
        (tmp_path / file).write_text("")
        monkeypatch.setenv(name, str(tmp_path / file))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.mark.parametrize("token", [None, CHAIN_TOKEN], ids=["keys", "session"])
async def test_without_static_keys_the_default_chain_signs(
    aws_environment: pytest.MonkeyPatch, provider: SnsProvider, stub: StubServer, token: str | None
) -> None:
    aws_environment.setenv("AWS_ACCESS_KEY_ID", CHAIN_KEY_ID)
    aws_environment.setenv("AWS_SECRET_ACCESS_KEY", CHAIN_SECRET)
    if token is not None:
        aws_environment.setenv("AWS_SESSION_TOKEN", token)
    stub.respond(200, publish_response(), XML_HEADERS)
    receipt = await provider.send(make_message(), SnsConfig(region=REGION, base_url=stub.url), {})
    assert receipt.message_id == MESSAGE_ID
    (sent,) = stub.requests
    assert f"Credential={CHAIN_KEY_ID}/" in sent.headers["Authorization"]
    assert sent.headers.get("X-Amz-Security-Token") == token
    signature = sent.headers["Authorization"].rpartition("Signature=")[2]
    assert signature == sigv4_signature(sent, CHAIN_SECRET, REGION)


async def test_the_chain_is_resolved_once_per_provider(
    aws_environment: pytest.MonkeyPatch, provider: SnsProvider, stub: StubServer
) -> None:
    aws_environment.setenv("AWS_ACCESS_KEY_ID", CHAIN_KEY_ID)
    aws_environment.setenv("AWS_SECRET_ACCESS_KEY", CHAIN_SECRET)
    stub.respond(200, publish_response(), XML_HEADERS)
    config = SnsConfig(region=REGION, base_url=stub.url)
    await provider.send(make_message(), config, {})
    aws_environment.setenv("AWS_ACCESS_KEY_ID", "AKIAOTHERKEY00000002")  # not read again
    await provider.send(make_message(), config, {})
    assert [f"Credential={CHAIN_KEY_ID}/" in r.headers["Authorization"] for r in stub.requests] == [
        True,
        True,
    ]
    fresh = SnsProvider()  # a new provider resolves anew
    try:
        await fresh.send(make_message(), config, {})
    finally:
        await fresh.aclose()
    assert "Credential=AKIAOTHERKEY00000002/" in stub.requests[2].headers["Authorization"]


def test_build_request_alone_resolves_the_chain_too(
    aws_environment: pytest.MonkeyPatch, provider: SnsProvider
) -> None:
    aws_environment.setenv("AWS_ACCESS_KEY_ID", CHAIN_KEY_ID)
    aws_environment.setenv("AWS_SECRET_ACCESS_KEY", CHAIN_SECRET)
    request = provider.build_request(make_message(), SnsConfig(region=REGION), SnsCredentials())
    assert f"Credential={CHAIN_KEY_ID}/" in request.headers["Authorization"]
    assert "X-Amz-Security-Token" not in request.headers


async def test_static_keys_win_over_the_chain(
    aws_environment: pytest.MonkeyPatch, provider: SnsProvider, stub: StubServer
) -> None:
    aws_environment.setenv("AWS_ACCESS_KEY_ID", CHAIN_KEY_ID)
    aws_environment.setenv("AWS_SECRET_ACCESS_KEY", CHAIN_SECRET)
    stub.respond(200, publish_response(), XML_HEADERS)
    await provider.send(make_message(), SnsConfig(region=REGION, base_url=stub.url), CREDENTIALS)
    assert f"Credential={ACCESS_KEY_ID}/" in stub.requests[0].headers["Authorization"]


@pytest.mark.usefixtures("aws_environment")
async def test_a_chain_that_finds_nothing_is_a_configuration_error(
    provider: SnsProvider, stub: StubServer
) -> None:
    error = await failure(provider, SnsConfig(region=REGION, base_url=stub.url), {})
    assert (error.code, error.message) == ("configuration_error", NO_CREDENTIALS)
    assert (error.retryable, error.handed_off) == (False, False)
    assert stub.requests == []


class FakeRefreshable:
    """Stands for botocore's RefreshableCredentials: records the threads that read it."""

    def __init__(self, due: bool) -> None:
        self.due = due
        self.threads: list[int] = []

    def refresh_needed(self) -> bool:
        return self.due

    def get_frozen_credentials(self) -> Any:
        self.threads.append(threading.get_ident())
        return botocore("credentials").ReadOnlyCredentials(
            CHAIN_KEY_ID, CHAIN_SECRET, CHAIN_TOKEN, None
        )


@pytest.mark.parametrize("due", [False, True], ids=["fresh", "refresh-due"])
async def test_a_due_refresh_runs_off_the_event_loop(
    provider: SnsProvider, stub: StubServer, due: bool
) -> None:
    """A refresh may do network IO (STS, the metadata service): never on the event loop."""
    chain = FakeRefreshable(due)
    provider._chain = chain
    stub.respond(200, publish_response(), XML_HEADERS)
    await provider.send(make_message(), SnsConfig(region=REGION, base_url=stub.url), {})
    assert stub.requests[0].headers["X-Amz-Security-Token"] == CHAIN_TOKEN
    (thread,) = chain.threads
    assert (thread == threading.get_ident()) is not due


# -- without the aws extra ----------------------------------------------------------------


@pytest.fixture
def without_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports of botocore fail as if the aws extra were not installed (nothing uninstalled)."""
    for module in ("botocore", "botocore.session", "botocore.credentials", "botocore.auth"):
        monkeypatch.setitem(sys.modules, module, None)


@pytest.mark.usefixtures("without_botocore")
async def test_without_botocore_static_keys_still_send(
    provider: SnsProvider, stub: StubServer
) -> None:
    """Signing is ours: botocore is needed for the default credential chain only."""
    with pytest.raises(ImportError):
        importlib.import_module("botocore.session")
    stub.respond(200, publish_response(), XML_HEADERS)
    receipt = await provider.send(
        make_message(), SnsConfig(region=REGION, base_url=stub.url), WITH_TOKEN
    )
    assert receipt.message_id == MESSAGE_ID
    (sent,) = stub.requests
    signature = sent.headers["Authorization"].rpartition("Signature=")[2]
    assert signature == sigv4_signature(sent, SECRET_ACCESS_KEY, REGION)


@pytest.mark.usefixtures("without_botocore")
async def test_without_botocore_it_registers_but_the_chain_is_a_configuration_error(
    provider: SnsProvider, stub: StubServer
) -> None:
    registered: list[Any] = []
    sns.register_providers(registered.append, Settings())
    assert [made.name for made in registered] == ["sns"]
    for _ in range(2):
        error = await failure(provider, SnsConfig(region=REGION, base_url=stub.url), {})
        assert (error.code, error.message) == ("configuration_error", MISSING_EXTRA)
        assert (error.retryable, error.handed_off) == (False, False)
    assert stub.requests == []


async def test_nothing_is_logged_not_even_at_debug(
    provider: SnsProvider, stub: StubServer, caplog: pytest.LogCaptureFixture
) -> None:
    """botocore's signer logged the canonical request (with the token) at DEBUG; ours logs
    nothing, so neither the token nor the code can reach a log."""
    stub.respond(200, publish_response(), XML_HEADERS)
    with caplog.at_level(logging.DEBUG):
        await provider.send(make_message(), SnsConfig(region=REGION, base_url=stub.url), WITH_TOKEN)
    assert stub.requests[0].headers["X-Amz-Security-Token"] == SESSION_TOKEN
    assert SESSION_TOKEN not in caplog.text
    assert SECRET_ACCESS_KEY not in caplog.text
    assert CODE not in caplog.text
