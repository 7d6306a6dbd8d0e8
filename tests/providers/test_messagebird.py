"""MessageBird / Bird: both APIs' request shapes, the region from the key, and both error tables.

No public spec exists for either API : the fixtures are built from
Bird's API reference, bird-sdk-python (``/v1/sms/messages``, ``{"error": {type, code, ...}}``) and
messagebird/python-rest-api (``/messages``, ``{"errors": [{code, description}]}``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from plugins.messagebird import (
    MessageBirdConfig,
    MessageBirdCredentials,
    MessageBirdProvider,
    bird_base_url,
)
from runtime import PhoneMessageRequest
from runtime.errors import ProviderError
from tests.conftest import PipelineFactory
from tests.providers.case_messagebird import ACCESS_KEY, CASE, MESSAGE_ID
from tests.providers.harness import CODE, RECIPIENT, make_message
from tests.providers.test_common import tenant as tenant_of
from tests.support.stub_server import StubServer

LEGACY_KEY = "live_a1B2c3D4e5F6g7H8i9J0k1L2"
LEGACY_ID = "e8077d803532c0b5937c639b60216938"
LEGACY_OK = {
    "id": LEGACY_ID,
    "href": f"https://rest.messagebird.com/messages/{LEGACY_ID}",
    "direction": "mt",
    "type": "sms",
    "originator": "Acme",
    "body": f"{CODE} is your code",
    "recipients": {
        "totalCount": 1,
        "totalSentCount": 1,
        "items": [{"recipient": 447911123456, "status": "sent"}],
    },
}


@pytest.fixture
async def provider() -> AsyncIterator[MessageBirdProvider]:
    made = MessageBirdProvider()
    yield made
    await made.aclose()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def bird(base_url: str | None, **overrides: Any) -> dict[str, Any]:
    return {**CASE.config(base_url or ""), "base_url": base_url, **overrides}


def legacy(base_url: str, **overrides: Any) -> dict[str, Any]:
    return {"api": "legacy", "sender": "Acme", "base_url": base_url, **overrides}


BIRD_KEY = {"access_key": ACCESS_KEY}
OLD_KEY = {"access_key": LEGACY_KEY}


async def failure(
    provider: MessageBirdProvider, config: dict[str, Any], credentials: dict[str, str]
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_message(), config, credentials)
    return caught.value


# --- Bird -----------------------------------------------------------------------------------


async def test_bird_request_shape(stub: StubServer, provider: MessageBirdProvider) -> None:
    ok = CASE.ok["sms"]
    stub.respond(ok.status, ok.body)
    receipt = await provider.send(make_message(), bird(stub.url), BIRD_KEY)
    assert (receipt.provider, receipt.message_id, receipt.status) == (
        "messagebird",
        MESSAGE_ID,
        "accepted",
    )
    (sent,) = stub.requests
    assert (sent.method, sent.path) == ("POST", "/v1/sms/messages")
    assert sent.headers["Authorization"] == f"Bearer {ACCESS_KEY}"
    assert sent.headers["Idempotency-Key"] == "msg-1"  # the delivery id
    assert sent.headers["Content-Type"] == "application/json"
    assert orjson.loads(sent.body) == {
        "to": RECIPIENT,  # E.164 with the +
        "from": "Acme",
        "text": f"{CODE} is your code",
        "category": "authentication",
    }


async def test_a_retry_of_a_delivery_carries_its_key_and_another_delivery_its_own(
    stub: StubServer, provider: MessageBirdProvider
) -> None:
    """Bird deduplicates by the key: the same delivery sent twice is one SMS at Bird."""
    ok = CASE.ok["sms"]
    stub.respond(ok.status, ok.body)
    for message_id in ("delivery-a", "delivery-a", "delivery-b", "x" * 300):
        await provider.send(make_message(id=message_id), bird(stub.url), BIRD_KEY)
    keys = [sent.headers["Idempotency-Key"] for sent in stub.requests]
    assert keys == ["delivery-a", "delivery-a", "delivery-b", "x" * 255]  # Bird's limit: 255


async def test_the_key_is_the_reports_delivery_id_through_the_pipeline(
    stub: StubServer, make_pipeline: PipelineFactory
) -> None:
    ok = CASE.ok["sms"]
    stub.respond(ok.status, ok.body)
    environ = {f"CRED_{name.upper()}": value for name, value in CASE.credentials.items()}
    pipeline = make_pipeline(tenant_of(CASE, stub.url), environ=environ)
    report = await pipeline.deliver(
        PhoneMessageRequest.create(tenant="acme", recipient=RECIPIENT, code=CODE)
    )
    assert report.status == "delivered"
    (sent,) = stub.requests
    assert sent.headers["Idempotency-Key"] == report.id


@pytest.mark.parametrize(
    ("body", "code", "retryable"),
    [
        # An earlier request of this delivery is still in flight at Bird (its idempotency page).
        (
            {"error": {"type": "conflict_error", "code": "E01004", "message": "busy"}},
            "E01004",
            True,
        ),
        (
            {"type": "idempotency_key_in_use", "message": "in flight"},
            "idempotency_key_in_use",
            True,
        ),
        # This delivery's key was used with another body: Bird sent something for it already.
        ({"error": {"code": "E01005", "message": "reused"}}, "E01005", False),
    ],
)
async def test_a_409_about_the_key_means_bird_has_the_delivery(
    stub: StubServer,
    provider: MessageBirdProvider,
    body: dict[str, Any],
    code: str,
    retryable: bool,
) -> None:
    """No fallback: Bird already has this delivery, and a second provider would send again."""
    stub.respond(409, body)
    error = await failure(provider, bird(stub.url), BIRD_KEY)
    assert (error.code, error.retryable, error.handed_off, error.status) == (
        code,
        retryable,
        True,
        409,
    )


async def test_bird_without_sender_lets_bird_choose(
    stub: StubServer, provider: MessageBirdProvider
) -> None:
    stub.respond(200, {"id": MESSAGE_ID, "status": "accepted"})
    await provider.send(make_message(), bird(stub.url, sender=None), BIRD_KEY)
    assert "from" not in orjson.loads(stub.requests[0].body)


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("bk_eu1_abcdef0123456789", "https://eu1.platform.bird.com"),
        ("bk_us2_abcdef0123456789", "https://us2.platform.bird.com"),
        ("bm_ap1_abcdef0123456789", "https://ap1.platform.bird.com"),
        ("live_abcdef0123456789", None),
        ("bk_EU1_abcdef", None),
        ("bk_eu1_", None),
    ],
)
def test_the_bird_region_comes_from_the_key_prefix(key: str, url: str | None) -> None:
    assert bird_base_url(key) == url


def test_without_base_url_the_request_goes_to_the_keys_region() -> None:
    request = MessageBirdProvider().build_request(
        make_message(),
        MessageBirdConfig(sender="Acme"),
        MessageBirdCredentials.model_validate({"access_key": "bk_us1_abcdef0123456789"}),
    )
    assert request.url == "https://us1.platform.bird.com/v1/sms/messages"


async def test_bird_without_base_url_or_region_key_is_a_configuration_error(
    provider: MessageBirdProvider,
) -> None:
    error = await failure(provider, bird(None), OLD_KEY)
    assert (error.code, error.handed_off) == ("configuration_error", False)
    assert LEGACY_KEY not in str(error)


# bird-sdk-python ErrorType, by the status the SDK infers for each.
BIRD_ERRORS = [
    (400, "bad_request_error", False, False),
    (401, "auth_error", False, False),
    (402, "billing_error", False, False),
    (403, "permission_error", False, False),
    (404, "not_found_error", False, False),
    (409, "conflict_error", False, False),
    (413, "payload_too_large_error", False, False),
    (422, "validation_error", False, False),
    (429, "rate_limit_error", True, False),
    (500, "internal_error", True, True),
    (501, "not_implemented_error", False, True),
    (503, "service_unavailable_error", True, False),
]


@pytest.mark.parametrize(("status", "kind", "retryable", "handed_off"), BIRD_ERRORS)
async def test_bird_error_table(
    stub: StubServer,
    provider: MessageBirdProvider,
    status: int,
    kind: str,
    retryable: bool,
    handed_off: bool,
) -> None:
    stub.respond(
        status,
        {
            "error": {
                "type": kind,
                "code": "some_code",
                "message": "explained",
                "param": None,
                "request_id": "req_1",
            }
        },
    )
    error = await failure(provider, bird(stub.url), BIRD_KEY)
    assert (error.code, error.status) == (kind, status)
    assert (error.retryable, error.handed_off) == (retryable, handed_off)
    assert "explained" in error.message


async def test_a_permanent_type_wins_over_a_5xx_status(
    stub: StubServer, provider: MessageBirdProvider
) -> None:
    """The type decides over the status: a billing error is never retried."""
    stub.respond(500, {"error": {"type": "billing_error", "message": "no funds"}})
    error = await failure(provider, bird(stub.url), BIRD_KEY)
    assert (error.code, error.retryable) == ("billing_error", False)


@pytest.mark.parametrize("body", [{"status": "accepted"}, {"id": "", "status": "accepted"}])
async def test_a_bird_success_without_id_is_malformed(
    stub: StubServer, provider: MessageBirdProvider, body: dict[str, Any]
) -> None:
    stub.respond(202, body)
    error = await failure(provider, bird(stub.url), BIRD_KEY)
    assert (error.code, error.handed_off) == ("malformed_response", True)


# --- Legacy MessageBird ---------------------------------------------------------------------


async def test_legacy_request_shape(stub: StubServer, provider: MessageBirdProvider) -> None:
    stub.respond(201, LEGACY_OK)
    receipt = await provider.send(make_message(), legacy(stub.url), OLD_KEY)
    assert (receipt.message_id, receipt.status) == (LEGACY_ID, "sent")
    (sent,) = stub.requests
    assert (sent.method, sent.path) == ("POST", "/messages")
    assert sent.headers["Authorization"] == f"AccessKey {LEGACY_KEY}"
    assert "Idempotency-Key" not in sent.headers  # not part of the legacy API
    assert orjson.loads(sent.body) == {
        "originator": "Acme",
        "recipients": [RECIPIENT.removeprefix("+")],  # digits, no +
        "body": f"{CODE} is your code",
    }


def test_legacy_defaults_to_rest_messagebird_com() -> None:
    request = MessageBirdProvider().build_request(
        make_message(),
        MessageBirdConfig(api="legacy", sender="Acme"),
        MessageBirdCredentials.model_validate(OLD_KEY),
    )
    assert request.url == "https://rest.messagebird.com/messages"


async def test_a_bird_key_on_the_legacy_api_is_refused_before_sending(
    stub: StubServer, provider: MessageBirdProvider
) -> None:
    """Bird's platforms: a bk_ key gets 401 on rest.messagebird.com."""
    error = await failure(provider, legacy(stub.url), BIRD_KEY)
    assert (error.code, error.handed_off) == ("configuration_error", False)
    assert stub.requests == []


@pytest.mark.parametrize(
    "config",
    [
        {"api": "legacy"},
        {"api": "sms"},
        {"sender": "MuchTooLongSender"},
        {"unknown": 1},
    ],
    ids=["legacy-without-originator", "unknown-api", "long-sender", "unknown-key"],
)
async def test_invalid_settings_are_configuration_errors(
    stub: StubServer, provider: MessageBirdProvider, config: dict[str, Any]
) -> None:
    error = await failure(provider, {"base_url": stub.url, **config}, OLD_KEY)
    assert (error.code, error.handed_off) == ("configuration_error", False)
    assert stub.requests == []


# The legacy codes (from memory, not verified); statuses as the legacy API answers them.
LEGACY_ERRORS = [
    (401, 2, "Request not allowed (incorrect access_key)", False, False),
    (422, 9, "no (correct) recipients found", False, False),
    (422, 10, "originator is invalid", False, False),
    (404, 20, "message not found", False, False),
    (400, 21, "Bad request", False, False),
    (402, 25, "Not enough balance", False, False),
    (404, 98, "not found", False, False),
    (500, 99, "internal error", True, True),
    (503, 99, "internal error", True, False),
    (422, 99, "internal error", True, False),
]


@pytest.mark.parametrize(
    ("status", "code", "description", "retryable", "handed_off"), LEGACY_ERRORS
)
async def test_legacy_error_table(
    stub: StubServer,
    provider: MessageBirdProvider,
    status: int,
    code: int,
    description: str,
    retryable: bool,
    handed_off: bool,
) -> None:
    stub.respond(
        status, {"errors": [{"code": code, "description": description, "parameter": None}]}
    )
    error = await failure(provider, legacy(stub.url), OLD_KEY)
    assert (error.code, error.status) == (str(code), status)
    assert (error.retryable, error.handed_off) == (retryable, handed_off)
    assert description in error.message


async def test_the_access_key_never_appears_in_errors(
    stub: StubServer, provider: MessageBirdProvider
) -> None:
    stub.respond(401, {"errors": [{"code": 2, "description": f"bad key {LEGACY_KEY}"}]})
    error = await failure(provider, legacy(stub.url), OLD_KEY)
    assert LEGACY_KEY not in str(error)


# --- The page -------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "providers" / "messagebird.md"


def test_the_page_documents_every_setting_credential_and_code() -> None:
    from plugins.messagebird import BIRD_ERRORS, LEGACY_ERRORS

    text = DOC.read_text("utf-8")
    names = [*MessageBirdConfig.model_fields, *MessageBirdCredentials.model_fields]
    codes = [*BIRD_ERRORS.permanent, *(BIRD_ERRORS.retryable - BIRD_ERRORS.handed_off)]
    codes += ["internal_error"]
    codes += [*LEGACY_ERRORS.permanent, *LEGACY_ERRORS.retryable, "429", "500", "503"]
    codes += ["timeout", "connect_timeout", "connection_error", "disconnected"]
    codes += ["malformed_response", "configuration_error", "service_unavailable_error"]
    assert [name for name in [*names, *codes] if f"`{name}`" not in text] == []


def test_the_pages_tenant_examples_validate() -> None:
    blocks = re.findall(r"^```toml\n(.*?)^```", DOC.read_text("utf-8"), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 2
    for block in blocks:
        for tenant in tomllib.loads(block)["tenants"].values():
            MessageBirdConfig.model_validate(tenant["provider_settings"])
            MessageBirdCredentials.model_validate(dict.fromkeys(tenant["credentials_env"], "k"))
