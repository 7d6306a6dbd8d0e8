"""Plivo: the request shapes, its error table, and voice calls end to end through the answer app.

No public Plivo spec exists so the fixtures are built from Plivo's API reference
and the plivo-python SDK: JSON ``POST``s under ``/v1/Account/{auth_id}/`` (trailing slash),
Basic auth, errors ``{"api_id", "error"}`` classified by HTTP status.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import aiohttp
import orjson
import pytest
from aiohttp import web
from sqlalchemy import func, select

from plugins.plivo import AnswerStore, PlivoProvider, answer_app, serve_answers
from plugins.plivo.answers import (
    SPEAK_LANGUAGES,
    SPEAK_VOICES,
    plivo_answers,
    speak_language,
    speak_voice,
    speak_xml,
)
from runtime.errors import ProviderError
from runtime.locales import MAIN_REGION
from tests.conftest import make_settings
from tests.providers.case_plivo import (
    ANSWER_BASE_URL,
    API_ID,
    AUTH_ID,
    AUTH_TOKEN,
    CASE,
    FROM_NUMBER,
    SMS_OK,
    UUID,
    VOICE_OK,
)
from tests.providers.harness import CODE, RECIPIENT, make_message
from tests.support.stub_server import StubServer, free_port

CREDENTIALS = {"auth_id": AUTH_ID, "auth_token": AUTH_TOKEN}
VOICE_TEXT = "Your code is 7. 3. 5. 1. 9. 4."
POWERPACK = "d35f2e82-d387-427f-8594-6fa07613c43a"


class Clock:
    """A settable clock (seconds since the epoch): expiry is tested without sleeping."""

    def __init__(self, now: float = 1_795_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> Iterator[AnswerStore]:
    made = AnswerStore.from_url("sqlite://", clock=clock)
    yield made
    made.close()


@pytest.fixture
async def provider(store: AnswerStore) -> AsyncIterator[PlivoProvider]:
    made = PlivoProvider(answers=store)
    yield made
    await made.aclose()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


@pytest.fixture
async def answer_server(store: AnswerStore) -> AsyncIterator[str]:
    """The answer app on 127.0.0.1 (a free port): its base URL."""
    runner = web.AppRunner(answer_app(store), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


def config(base_url: str, **overrides: Any) -> dict[str, Any]:
    return {**CASE.config(base_url), **overrides}


async def fetch(url: str, method: str = "POST") -> tuple[int, str, str]:
    """Fetch ``url`` as Plivo does (POST form by default): status, content type, body."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data={"CallUUID": UUID, "From": FROM_NUMBER}) as answer,
    ):
        return answer.status, answer.content_type, await answer.text()


def answer_path(url: str) -> str:
    return url.removeprefix(ANSWER_BASE_URL)


# --- SMS ------------------------------------------------------------------------------------


async def test_sms_request_shape(stub: StubServer, provider: PlivoProvider) -> None:
    stub.respond(SMS_OK.status, SMS_OK.body)
    receipt = await provider.send(make_message(), config(stub.url), CREDENTIALS)
    assert (receipt.provider, receipt.message_id) == ("plivo", UUID)
    (sent,) = stub.requests
    assert (sent.method, sent.path) == ("POST", f"/v1/Account/{AUTH_ID}/Message/")
    expected = base64.b64encode(f"{AUTH_ID}:{AUTH_TOKEN}".encode()).decode()
    assert sent.headers["Authorization"] == f"Basic {expected}"
    assert sent.headers["Content-Type"] == "application/json"
    assert orjson.loads(sent.body) == {
        "src": FROM_NUMBER,
        "dst": RECIPIENT,  # Plivo takes E.164 with the +
        "text": f"{CODE} is your code",
    }


async def test_sms_through_a_powerpack_with_a_status_callback(
    stub: StubServer, provider: PlivoProvider
) -> None:
    stub.respond(SMS_OK.status, SMS_OK.body)
    settings = {
        "powerpack_uuid": POWERPACK,
        "base_url": stub.url,
        "status_callback": "https://hooks.acme.example/plivo/status",
    }
    await provider.send(make_message(), settings, CREDENTIALS)
    body = orjson.loads(stub.requests[0].body)
    assert body["powerpack_uuid"] == POWERPACK
    assert "src" not in body
    assert body["url"] == "https://hooks.acme.example/plivo/status"


async def test_an_alphanumeric_sender_is_accepted_for_sms(
    stub: StubServer, provider: PlivoProvider
) -> None:
    stub.respond(SMS_OK.status, SMS_OK.body)
    await provider.send(make_message(), config(stub.url, from_number="Acme"), CREDENTIALS)
    assert orjson.loads(stub.requests[0].body)["src"] == "Acme"


@pytest.mark.parametrize(
    "senders",
    [
        {"from_number": None},
        {"powerpack_uuid": POWERPACK},  # and from_number: both
        {"from_number": "14155550100"},  # digits without +
        {"from_number": "TooLongSenderId"},
    ],
    ids=["neither", "both", "no-plus", "long-name"],
)
async def test_invalid_senders_are_configuration_errors(
    stub: StubServer, provider: PlivoProvider, senders: dict[str, Any]
) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(), config(stub.url, **senders), CREDENTIALS)
    assert (caught.value.code, caught.value.handed_off) == ("configuration_error", False)
    assert stub.requests == []


# The error classes of Plivo's API reference and plivo-python's process_response.
ERRORS = [
    (400, "ValidationError: invalid dst", False),
    (400, {"dst": "invalid number"}, False),
    (401, "AuthenticationError", False),
    (403, "Forbidden", False),
    (403, "GeoPermissionError: destination country not enabled", False),
    (404, "Resource not found", False),
    (405, "Method not allowed", False),
    (422, "Unprocessable Entity", False),
    (429, "too many requests", True),
]


@pytest.mark.parametrize(("status", "error", "retryable"), ERRORS)
@pytest.mark.parametrize("channel", ["sms", "voice"])
async def test_error_table(
    stub: StubServer,
    provider: PlivoProvider,
    channel: str,
    status: int,
    error: str | dict[str, str],
    retryable: bool,
) -> None:
    stub.respond(status, {"api_id": API_ID, "error": error})
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(channel=channel), config(stub.url), CREDENTIALS)
    failure = caught.value
    assert (failure.code, failure.status) == (str(status), status)
    assert (failure.retryable, failure.handed_off) == (retryable, False)
    assert "Plivo answered HTTP" in failure.message
    detail = error if isinstance(error, str) else "invalid number"
    assert detail in failure.message


@pytest.mark.parametrize(
    ("status", "retryable", "handed_off"), [(500, True, True), (503, True, False)]
)
async def test_server_errors_with_plivo_json(
    stub: StubServer, provider: PlivoProvider, status: int, retryable: bool, handed_off: bool
) -> None:
    stub.respond(status, {"api_id": API_ID, "error": "A server error occurred"})
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(), config(stub.url), CREDENTIALS)
    assert (caught.value.retryable, caught.value.handed_off) == (retryable, handed_off)


@pytest.mark.parametrize(
    "body",
    [
        {"api_id": API_ID, "message": "message(s) queued"},
        {"api_id": API_ID, "message_uuid": []},
        {"api_id": API_ID, "message_uuid": [""]},
    ],
)
async def test_an_sms_success_without_a_uuid_is_malformed(
    stub: StubServer, provider: PlivoProvider, body: dict[str, Any]
) -> None:
    stub.respond(202, body)
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(), config(stub.url), CREDENTIALS)
    assert (caught.value.code, caught.value.handed_off) == ("malformed_response", True)


async def test_credentials_never_appear_in_errors(
    stub: StubServer, provider: PlivoProvider
) -> None:
    stub.respond(401, {"api_id": API_ID, "error": f"bad token {AUTH_TOKEN} for {AUTH_ID}"})
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(), config(stub.url), CREDENTIALS)
    assert AUTH_TOKEN not in str(caught.value)
    assert AUTH_ID not in str(caught.value)


# --- Voice ----------------------------------------------------------------------------------


async def test_voice_end_to_end_through_the_answer_app(
    stub: StubServer, provider: PlivoProvider, answer_server: str
) -> None:
    stub.respond(VOICE_OK.status, VOICE_OK.body)
    receipt = await provider.send(
        make_message(channel="voice", locale="en_GB"), config(stub.url), CREDENTIALS
    )
    assert receipt.message_id == UUID
    (sent,) = stub.requests
    assert (sent.method, sent.path) == ("POST", f"/v1/Account/{AUTH_ID}/Call/")
    call = orjson.loads(sent.body)
    assert set(call) == {"from", "to", "answer_url", "answer_method"}
    assert (call["from"], call["to"], call["answer_method"]) == (FROM_NUMBER, RECIPIENT, "POST")
    assert call["answer_url"].startswith(f"{ANSWER_BASE_URL}/plivo/answer/")
    token = call["answer_url"].rsplit("/", 1)[1]
    assert len(token) >= 43  # token_urlsafe(32)
    assert CODE not in call["answer_url"]

    url = answer_server + answer_path(call["answer_url"])
    for method in ("POST", "GET", "POST"):  # Plivo may fetch more than once
        status, content_type, text = await fetch(url, method)
        assert (status, content_type) == (200, "application/xml")
        root = ElementTree.fromstring(text)
        assert root.tag == "Response"
        (speak,) = list(root)
        assert speak.tag == "Speak"
        assert speak.attrib == {"language": "en-GB", "voice": "WOMAN", "loop": "2"}
        assert speak.text == VOICE_TEXT


async def test_unknown_and_expired_answers_are_404_without_detail(
    stub: StubServer, provider: PlivoProvider, answer_server: str, clock: Clock
) -> None:
    stub.respond(VOICE_OK.status, VOICE_OK.body)
    await provider.send(make_message(channel="voice"), config(stub.url), CREDENTIALS)
    url = answer_server + answer_path(orjson.loads(stub.requests[0].body)["answer_url"])

    status, _, text = await fetch(f"{answer_server}/plivo/answer/not-a-token")
    assert (status, text) == (404, "")
    clock.now += 599  # default answer_ttl is 600 s
    assert (await fetch(url))[0] == 200
    clock.now += 1
    for method in ("POST", "GET"):
        status, _, text = await fetch(url, method)
        assert (status, text) == (404, "")


async def test_answer_ttl_is_a_setting(
    stub: StubServer, provider: PlivoProvider, answer_server: str, clock: Clock
) -> None:
    stub.respond(VOICE_OK.status, VOICE_OK.body)
    await provider.send(make_message(channel="voice"), config(stub.url, answer_ttl=60), CREDENTIALS)
    url = answer_server + answer_path(orjson.loads(stub.requests[0].body)["answer_url"])
    clock.now += 59
    assert (await fetch(url))[0] == 200
    clock.now += 1
    assert (await fetch(url))[0] == 404


async def test_each_call_gets_its_own_token(stub: StubServer, provider: PlivoProvider) -> None:
    stub.respond(VOICE_OK.status, VOICE_OK.body)
    for _ in range(2):
        await provider.send(make_message(channel="voice"), config(stub.url), CREDENTIALS)
    urls = {orjson.loads(sent.body)["answer_url"] for sent in stub.requests}
    assert len(urls) == 2


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"answer_base_url": None}, "answer_base_url"),
        ({"from_number": None, "powerpack_uuid": POWERPACK}, "from_number"),
        ({"from_number": "Acme"}, "from_number"),
    ],
    ids=["no-answer-base-url", "powerpack-only", "alphanumeric-from"],
)
async def test_voice_without_what_a_call_needs_sends_and_stores_nothing(
    stub: StubServer,
    provider: PlivoProvider,
    store: AnswerStore,
    settings: dict[str, Any],
    problem: str,
) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.send(
            make_message(channel="voice"), config(stub.url, **settings), CREDENTIALS
        )
    assert (caught.value.code, caught.value.handed_off) == ("configuration_error", False)
    assert problem in caught.value.message
    assert stub.requests == []
    assert answer_rows(store) == 0


async def test_a_refused_call_leaves_no_fetchable_answer(
    stub: StubServer, provider: PlivoProvider, store: AnswerStore
) -> None:
    stub.respond(403, {"api_id": API_ID, "error": "GeoPermissionError"})
    with pytest.raises(ProviderError):
        await provider.send(make_message(channel="voice"), config(stub.url), CREDENTIALS)
    assert answer_rows(store) == 0


async def test_a_call_that_may_have_been_placed_keeps_its_answer(
    stub: StubServer, provider: PlivoProvider, store: AnswerStore
) -> None:
    """A 500 may come after Plivo placed the call: the callee must still hear the code."""
    stub.respond(500, {"api_id": API_ID, "error": "A server error occurred"})
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(channel="voice"), config(stub.url), CREDENTIALS)
    assert caught.value.handed_off
    assert answer_rows(store) == 1


async def test_a_voice_success_without_request_uuid_is_malformed(
    stub: StubServer, provider: PlivoProvider
) -> None:
    stub.respond(201, {"api_id": API_ID, "message": "call fired"})
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(channel="voice"), config(stub.url), CREDENTIALS)
    assert (caught.value.code, caught.value.handed_off) == ("malformed_response", True)


async def test_an_answer_store_failure_places_no_call(
    stub: StubServer, provider: PlivoProvider, store: AnswerStore
) -> None:
    plivo_answers.drop(store.engine)
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(channel="voice"), config(stub.url), CREDENTIALS)
    failure = caught.value
    assert (failure.code, failure.retryable, failure.handed_off) == (
        "answer_store_error",
        True,
        False,
    )
    assert stub.requests == []


def answer_rows(store: AnswerStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(plivo_answers)).scalar_one())


# --- The answer store and its documents -----------------------------------------------------


def test_expired_rows_are_purged_on_write(store: AnswerStore, clock: Clock) -> None:
    old = store.put("<Response/>", 60)
    store.put("<Response/>", 600)
    assert answer_rows(store) == 2
    clock.now += 60
    assert store.get(old) is None
    fresh = store.put("<Response/>", 600)
    assert answer_rows(store) == 2  # the expired one went, the two live ones stay
    assert store.get(fresh) == "<Response/>"


def test_speak_text_is_escaped_not_spliced() -> None:
    hostile = 'Code 1 2 3 </Speak><Hangup/> & "quotes" <b>'
    root = ElementTree.fromstring(speak_xml(hostile, "en-US"))
    assert [child.tag for child in root] == ["Speak"]
    assert root[0].text == hostile


# Locale -> (<Speak language>, voice): always a language Plivo's <Speak> table lists, with a
# voice that language has (pt-PT has only MAN; Plivo's default WOMAN elsewhere).
SPEAK_CASES = [
    ("en_GB", "en-GB", "WOMAN"),
    ("en", "en-US", "WOMAN"),
    ("en-IN", "en-US", "WOMAN"),  # not in the <Speak> table: the language's main region
    ("fr", "fr-FR", "WOMAN"),
    ("fr-CA", "fr-CA", "WOMAN"),
    ("pt-BR", "pt-BR", "WOMAN"),
    ("pt", "pt-PT", "MAN"),
    ("pt-PT", "pt-PT", "MAN"),
    ("es-AR", "es-ES", "WOMAN"),
    ("es-US", "es-US", "WOMAN"),
    ("de-AT", "de-DE", "WOMAN"),
    ("da", "da-DK", "WOMAN"),
    ("zh-Hans", "en-US", "WOMAN"),  # no Chinese in the table: the default, not cmn-CN
    ("ar", "en-US", "WOMAN"),  # nor Arabic (arb)
    ("ja-JP", "en-US", "WOMAN"),
    ("el-GR", "en-US", "WOMAN"),
    ("xx", "en-US", "WOMAN"),
    ("", "en-US", "WOMAN"),
]


@pytest.mark.parametrize(("locale", "language", "voice"), SPEAK_CASES)
def test_speak_language_and_voice(locale: str, language: str, voice: str) -> None:
    assert speak_language(locale) == language
    speak = ElementTree.fromstring(speak_xml("Your code is 1. 2.", speak_language(locale)))[0]
    assert (speak.get("language"), speak.get("voice")) == (language, voice)


def test_only_listed_languages_and_their_voices_are_spoken() -> None:
    assert len(SPEAK_VOICES) == 16  # Plivo's <Speak> table
    for code, voices in SPEAK_VOICES.items():
        assert speak_language(code) == code
        assert speak_voice(code) in voices
    for locale in [*MAIN_REGION, *MAIN_REGION.values(), "zh-TW", "en-GB-WLS", "cy-GB"]:
        assert speak_language(locale) in SPEAK_LANGUAGES


async def test_serve_answers_serves_what_a_provider_stored_in_the_settings_database(
    tmp_path: Path, stub: StubServer
) -> None:
    """The provider as registered (from settings) and ``serve_answers`` share the database."""
    settings = make_settings(tmp_path)
    provider = PlivoProvider(settings=settings)
    stub.respond(VOICE_OK.status, VOICE_OK.body)
    try:
        await provider.send(make_message(channel="voice"), config(stub.url), CREDENTIALS)
    finally:
        await provider.aclose()
    path = answer_path(orjson.loads(stub.requests[0].body)["answer_url"])

    port = free_port()
    server = asyncio.create_task(serve_answers(settings, "127.0.0.1", port))
    try:
        status, _, text = await fetch_when_listening(f"http://127.0.0.1:{port}{path}")
        assert status == 200
        assert ElementTree.fromstring(text)[0].text == VOICE_TEXT
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    with pytest.raises(aiohttp.ClientConnectionError):
        await fetch(f"http://127.0.0.1:{port}{path}")


async def fetch_when_listening(url: str) -> tuple[int, str, str]:
    """Fetch ``url`` once the server task has bound its port (yielding, never sleeping)."""
    for _ in range(1000):
        try:
            return await fetch(url)
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0)
    raise AssertionError(f"nothing listens at {url}")


async def test_sms_only_tenants_never_open_the_answer_store(
    tmp_path: Path, stub: StubServer
) -> None:
    settings = make_settings(tmp_path)
    provider = PlivoProvider(settings=settings)
    stub.respond(SMS_OK.status, SMS_OK.body)
    try:
        await provider.send(make_message(), config(stub.url), CREDENTIALS)
    finally:
        await provider.aclose()
    assert not settings.data_dir.exists()


@pytest.mark.postgres
async def test_answer_store_on_postgresql(postgres_url: str, clock: Clock) -> None:
    store = AnswerStore.from_url(postgres_url, clock=clock)
    try:
        token = await store.aput(speak_xml(VOICE_TEXT, "en-US"), 60)
        assert not store.local
        assert ElementTree.fromstring(await store.aget(token) or "")[0].text == VOICE_TEXT
        clock.now += 60
        assert await store.aget(token) is None
        await store.adiscard(token)
    finally:
        store.close()


# --- The page -------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "providers" / "plivo.md"


def test_the_page_documents_every_setting_credential_and_code() -> None:
    from plugins.plivo import PlivoConfig, PlivoCredentials

    text = DOC.read_text("utf-8")
    names = [*PlivoConfig.model_fields, *PlivoCredentials.model_fields]
    codes = ["400", "401", "403", "404", "429", "500", "503", "answer_store_error"]
    codes += ["timeout", "connect_timeout", "connection_error", "disconnected"]
    codes += ["malformed_response", "configuration_error"]
    assert [name for name in [*names, *codes] if f"`{name}`" not in text] == []


def test_the_pages_tenant_examples_validate() -> None:
    from plugins.plivo import PlivoConfig, PlivoCredentials

    blocks = re.findall(r"^```toml\n(.*?)^```", DOC.read_text("utf-8"), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 2
    for block in blocks:
        for tenant in tomllib.loads(block)["tenants"].values():
            PlivoConfig.model_validate(tenant["provider_settings"])
            PlivoCredentials.model_validate(dict.fromkeys(tenant["credentials_env"], "ABCDEF12"))
