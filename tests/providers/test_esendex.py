"""Esendex: the dispatcher request (XML, escaped, Basic auth), its HTTP-status error table, and
untrusted XML answers.

No OpenAPI spec exists for Esendex (only a community RAML 0.8), so the contract
is checked by :func:`contract_problems`, written from Esendex's API reference and SDKs, and a
test proves that it can fail.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from plugins.esendex import EsendexConfig, EsendexCredentials, EsendexProvider
from runtime.errors import ProviderError
from runtime.providers import Receipt
from tests.providers.case_esendex import (
    ACCOUNT,
    MESSAGE_ID,
    OK_BODY,
    PASSWORD,
    USERNAME,
    XML,
    error_body,
)
from tests.providers.harness import CODE, make_message
from tests.support.stub_server import RecordedRequest, StubServer

CREDENTIALS = EsendexCredentials(username=USERNAME, password=PASSWORD)
MESSAGE_CHILDREN = ("to", "body", "from", "type", "lang", "validity", "characterset", "retries")


def contract_problems(request: RecordedRequest) -> list[str]:
    """What in ``request`` breaks Esendex's documented dispatcher contract (empty: nothing).

    Esendex's reference: ``POST /v1.0/messagedispatcher``, ``application/xml``, HTTP Basic,
    ``<messages>`` with ``<accountreference>`` and ``<message>`` elements that hold ``<to>``
    (digits) and ``<body>``, optionally ``<from>``, ``<type>SMS|Voice</type>``, ``<lang>`` (for
    voice), ``<validity>``, ``<characterset>``, ``<retries>``.
    """
    problems = []
    headers = {name.lower(): value for name, value in request.headers.items()}
    if (request.method, request.path) != ("POST", "/v1.0/messagedispatcher"):
        problems.append(f"not the dispatcher: {request.method} {request.path}")
    if not headers.get("content-type", "").startswith("application/xml"):
        problems.append("Content-Type is not application/xml")
    if not headers.get("authorization", "").startswith("Basic "):
        problems.append("no HTTP Basic authorization")
    try:
        root = ET.fromstring(request.body)
    except ET.ParseError as exc:
        return [*problems, f"body is not XML: {exc}"]
    if root.tag != "messages":
        return [*problems, f"root is <{root.tag}>, not <messages>"]
    if not (root.findtext("accountreference") or "").strip():
        problems.append("no <accountreference>")
    messages = root.findall("message")
    if not messages:
        problems.append("no <message>")
    for message in messages:
        tags = [child.tag for child in message]
        problems += [f"unknown <{tag}>" for tag in tags if tag not in MESSAGE_CHILDREN]
        problems += [f"<{tag}> repeated" for tag in set(tags) if tags.count(tag) > 1]
        if not (message.findtext("to") or "").isdigit():
            problems.append("<to> is not digits only")
        if not message.findtext("body"):
            problems.append("no <body>")
        kind = message.findtext("type", "SMS")
        if kind not in ("SMS", "Voice"):
            problems.append(f"<type> {kind!r} is neither SMS nor Voice")
        if message.find("lang") is not None and kind != "Voice":
            problems.append("<lang> on a message that is not a voice call")
    return problems


@pytest.fixture
async def provider() -> AsyncIterator[EsendexProvider]:
    made = EsendexProvider()
    yield made
    await made.aclose()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def settings(stub: StubServer, **fields: Any) -> EsendexConfig:
    values: dict[str, Any] = {"account_reference": ACCOUNT, "base_url": stub.url, **fields}
    return EsendexConfig(**values)


async def send_ok(
    provider: EsendexProvider, stub: StubServer, config: EsendexConfig, **message: Any
) -> tuple[Receipt, RecordedRequest, ET.Element]:
    stub.respond(200, OK_BODY, XML)
    receipt = await provider.send(make_message(**message), config, CREDENTIALS)
    (sent,) = stub.requests
    assert contract_problems(sent) == []
    return receipt, sent, ET.fromstring(sent.body)


async def failure(
    provider: EsendexProvider, config: EsendexConfig, **message: Any
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(**message), config, CREDENTIALS)
    assert CODE not in str(caught.value)
    assert PASSWORD not in str(caught.value)
    return caught.value


# -- requests ------------------------------------------------------------------------------


async def test_sms_request(provider: EsendexProvider, stub: StubServer) -> None:
    receipt, sent, root = await send_ok(provider, stub, settings(stub, sender="Acme"))
    assert receipt == Receipt(provider="esendex", message_id=MESSAGE_ID)
    assert sent.method == "POST"
    assert sent.path == "/v1.0/messagedispatcher"
    assert sent.headers["Content-Type"] == "application/xml"
    scheme, _, token = sent.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode() == f"{USERNAME}:{PASSWORD}"
    assert root.findtext("accountreference") == ACCOUNT
    (message,) = root.findall("message")
    assert [(child.tag, child.text) for child in message] == [
        ("to", "447911123456"),
        ("body", f"{CODE} is your code"),
        ("from", "Acme"),
        ("type", "SMS"),
    ]


async def test_without_a_sender_there_is_no_from(
    provider: EsendexProvider, stub: StubServer
) -> None:
    _, _, root = await send_ok(provider, stub, settings(stub))
    assert root.find("message/from") is None


@pytest.mark.parametrize(
    ("locale", "lang"),
    [("en-GB", "en-GB"), ("en_gb", "en-GB"), ("fr", "fr-FR"), ("de-AT", "de-AT"), ("", "en-GB")],
)
async def test_voice_request_says_the_spelled_text_in_the_locale_language(
    provider: EsendexProvider, stub: StubServer, locale: str, lang: str
) -> None:
    receipt, _, root = await send_ok(
        provider, stub, settings(stub, sender="447700900123"), channel="voice", locale=locale
    )
    assert receipt.message_id == MESSAGE_ID
    message = root.find("message")
    assert message is not None
    assert message.findtext("type") == "Voice"
    assert message.findtext("lang") == lang
    assert message.findtext("body") == "Your code is 7. 3. 5. 1. 9. 4."
    assert message.findtext("from") == "447700900123"


async def test_voice_language_setting_overrides_the_locale(
    provider: EsendexProvider, stub: StubServer
) -> None:
    config = settings(stub, voice_language="es-ES")
    _, _, root = await send_ok(provider, stub, config, channel="voice", locale="fr-FR")
    assert root.findtext("message/lang") == "es-ES"


async def test_text_is_escaped_not_concatenated(
    provider: EsendexProvider, stub: StubServer
) -> None:
    text = f'{CODE} <is> your "code" & </body><to>999</to> ]]>'
    _, sent, root = await send_ok(provider, stub, settings(stub), text=text)
    assert root.findtext("message/body") == text
    assert [e.text for e in root.iter("to")] == ["447911123456"]
    assert b"&amp; &lt;/body&gt;&lt;to&gt;999" in sent.body


async def test_text_with_characters_xml_cannot_carry_is_not_sent(
    provider: EsendexProvider, stub: StubServer
) -> None:
    error = await failure(provider, settings(stub), text=f"{CODE}\x00 is your code")
    assert (error.code, error.retryable, error.handed_off) == ("configuration_error", False, False)
    assert stub.requests == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"account_reference": ""}, "account_reference"),
        ({"account_reference": "EX 1"}, "account_reference"),
        ({"sender": "AcmeCorporation"}, "sender"),  # 15 letters: more than 11
        ({"sender": "1" * 21}, "sender"),
        ({"voice_language": "english"}, "voice_language"),
        ({"base_url": "ftp://api.esendex.com"}, "base_url"),
        ({"unknown": "x"}, "unknown"),
    ],
)
async def test_invalid_settings_are_configuration_errors(
    provider: EsendexProvider, stub: StubServer, fields: dict[str, str], field: str
) -> None:
    config = {"account_reference": ACCOUNT, "base_url": stub.url, **fields}
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(), config, CREDENTIALS)
    assert caught.value.code == "configuration_error"
    assert field in caught.value.message
    assert stub.requests == []


def test_senders_within_esendex_limits_are_accepted() -> None:
    for sender in ("Acme", "Acme Ltd.", "12345678901234567890", "A&B_co-1"):
        assert EsendexConfig(account_reference=ACCOUNT, sender=sender).sender == sender


def test_the_contract_check_can_fail() -> None:
    """Proof that :func:`contract_problems` rejects what Esendex would reject."""
    bad = RecordedRequest(
        method="POST",
        path="/v1.0/messagedispatcher",
        query={},
        headers={"content-type": "application/json"},
        body=(
            b"<messages><message><to>+447911123456</to><type>Text</type>"
            b"<lang>en-GB</lang><colour>red</colour></message></messages>"
        ),
    )
    problems = contract_problems(bad)
    assert "Content-Type is not application/xml" in problems
    assert "no HTTP Basic authorization" in problems
    assert "no <accountreference>" in problems
    assert "<to> is not digits only" in problems
    assert "no <body>" in problems
    assert "<type> 'Text' is neither SMS nor Voice" in problems
    assert "unknown <colour>" in problems


# -- answers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable", "handed_off"),
    [
        (400, False, False),  # bad request (or more than 50,000 messages)
        (401, False, False),  # no or bad authentication
        (402, False, False),  # not enough message credits
        (403, False, False),  # failed authentication, or no access to the account
        (404, False, False),
        (429, True, False),
        (500, True, True),  # may come after Esendex queued the message
        (502, True, True),
        (503, True, False),
    ],
)
async def test_http_error_table(
    provider: EsendexProvider, stub: StubServer, status: int, retryable: bool, handed_off: bool
) -> None:
    stub.respond(status, error_body("Something went wrong"), XML)
    error = await failure(provider, settings(stub))
    assert (error.code, error.status) == (str(status), status)
    assert (error.retryable, error.handed_off) == (retryable, handed_off)
    assert error.message == f"Esendex answered HTTP {status}: Something went wrong"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"Payment Required",
        b"<html><body>gateway</body></html>",
        b'{"errors": ["json"]}',
        b"<errors><error><code>InsufficientCredit</code><message>No credit</message></error>",
    ],
)
async def test_any_error_body_is_tolerated(
    provider: EsendexProvider, stub: StubServer, body: bytes
) -> None:
    stub.respond(402, body, {"Content-Type": "text/plain"})
    error = await failure(provider, settings(stub))
    assert (error.code, error.retryable, error.handed_off) == ("402", False, False)


async def test_error_detail_joins_every_error(provider: EsendexProvider, stub: StubServer) -> None:
    body = (
        "<errors><error><code>1</code><description>Invalid recipient</description></error>"
        "<error>Body too long</error></errors>"
    )
    stub.respond(400, body, XML)
    error = await failure(provider, settings(stub))
    assert error.message == "Esendex answered HTTP 400: 1 Invalid recipient; Body too long"


BILLION_LAUGHS = (
    '<?xml version="1.0"?>'
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    '<messageheaders batchid="&lol3;"><messageheader id="&lol3;"/></messageheaders>'
)


async def test_a_success_with_a_dtd_is_refused_unexpanded(
    provider: EsendexProvider, stub: StubServer
) -> None:
    """A 200 declaring entities is not read (its id would be 'lollollol...'): Esendex took the
    message, so it is a handed-off ``malformed_response``."""
    stub.respond(200, BILLION_LAUGHS, XML)
    error = await failure(provider, settings(stub))
    assert (error.code, error.retryable, error.handed_off) == ("malformed_response", False, True)
    assert "lollol" not in str(error)


@pytest.mark.parametrize(
    "body",
    [
        '<!DOCTYPE x SYSTEM "http://127.0.0.1:1/evil.dtd"><messageheaders/>',
        BILLION_LAUGHS.replace("messageheaders", "errors"),
    ],
)
async def test_an_error_with_a_dtd_is_classified_without_its_body(
    provider: EsendexProvider, stub: StubServer, body: str
) -> None:
    stub.respond(400, body, XML)
    error = await failure(provider, settings(stub))
    assert error.message == "Esendex answered HTTP 400: no details"


@pytest.mark.parametrize(
    "body",
    [
        '<messageheaders batchid="b"/>',  # no messageheader
        '<messageheaders batchid="b"><messageheader uri="u"/></messageheaders>',  # no id
        '<messageheaders batchid="b"><messageheader id=""/></messageheaders>',
        f'<errors><messageheader id="{MESSAGE_ID}"/></errors>',  # not a dispatch answer
        "<messageheaders>",  # truncated
    ],
)
async def test_unreadable_successes_are_malformed_and_handed_off(
    provider: EsendexProvider, stub: StubServer, body: str
) -> None:
    stub.respond(200, body, XML)
    error = await failure(provider, settings(stub))
    assert (error.code, error.retryable, error.handed_off) == ("malformed_response", False, True)


async def test_a_success_without_namespace_is_read(
    provider: EsendexProvider, stub: StubServer
) -> None:
    stub.respond(200, f'<messageheaders><messageheader id="{MESSAGE_ID}"/></messageheaders>')
    receipt = await provider.send(make_message(), settings(stub), CREDENTIALS)
    assert receipt.message_id == MESSAGE_ID


@pytest.mark.parametrize(
    "body",
    [
        OK_BODY,
        OK_BODY.replace('<?xml version="1.0" encoding="utf-8"?>\n', ""),
        OK_BODY.replace(f'id="{MESSAGE_ID}"', 'id="a&amp;b"'),  # an entity: the parser's path
        OK_BODY.replace("<messageheader ", "<!-- note --><messageheader "),  # "<!": parser
    ],
)
def test_the_fast_read_and_the_parser_agree(body: str) -> None:
    from plugins.esendex import EsendexProvider, parse_untrusted_xml
    from runtime.http import HttpResponse

    receipt = EsendexProvider().read_response(HttpResponse(200, {}, body.encode()), make_message())
    header = parse_untrusted_xml(body.encode()).find("messageheader")
    assert header is not None
    assert receipt.message_id == header.attrib["id"]
