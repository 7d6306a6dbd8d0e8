"""The sample tenant actions in ``tenant_actions/``, run through the real sandbox.

Each sample is compiled as an upload would be, then run by one module-wide
:class:`SandboxRunner` against a :class:`StubServer` on 127.0.0.1 that plays the provider:
the tests check the request the action sent (path, headers, body, signature) and the outcome
for success and for each documented error class. The egress resolver refuses every name, so
no test can reach the network: only the literal 127.0.0.1 is allowed. At the end, three
samples go through the whole pipeline (providers ``phone-message-hook`` and ``custom``).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from runtime import PhoneMessageRequest
from runtime.events import parse_event
from runtime.sandbox.guest.compiler import check_action
from runtime.sandbox.host.egress import EgressPolicy
from runtime.sandbox.host.runner import SandboxRunner
from runtime.sandbox.shared.contract import HANDLERS, InvocationResult, SandboxLimits, Trigger
from tests.conftest import PipelineFactory
from tests.support.stub_server import RecordedRequest, StubServer, free_port

in_module_loop = pytest.mark.asyncio(loop_scope="module")
"""Sandbox tests share the module's runner, so they run in the module's event loop."""

ROOT = Path(__file__).resolve().parents[1]
ACTIONS = ROOT / "tenant_actions"
EVENTS = ACTIONS / "events"

SAMPLES: dict[str, tuple[Trigger, ...]] = {
    "vonage_sms": ("send-phone-message",),
    "infobip_sms": ("send-phone-message",),
    "webhook_relay": ("send-phone-message", "custom-phone-provider"),
    "country_routing": ("send-phone-message",),
    "voice_tts": ("send-phone-message",),
    "custom_provider": ("custom-phone-provider",),
}
"""Every sample and the triggers it serves; the first is the one its recorded event is for."""

Reply = tuple[int, Any, dict[str, str]]


def source(sample: str) -> str:
    return (ACTIONS / f"{sample}.py").read_text(encoding="utf-8")


def event(sample: str, **changes: Any) -> dict[str, Any]:
    """The sample's recorded event; ``changes`` replace fields of its message part."""
    data: dict[str, Any] = json.loads((EVENTS / f"{sample}.json").read_text(encoding="utf-8"))
    part = "notification" if "notification" in data else "message_options"
    data[part].update(changes)
    return data


# -- fixtures ---------------------------------------------------------------------------------


class NoDns:
    """An egress resolver that refuses every name (so nothing can leave 127.0.0.1)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return []


@pytest.fixture(scope="module")
def fake_server() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


@pytest.fixture(scope="module")
def closed_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def no_dns() -> NoDns:
    return NoDns()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def runner(
    fake_server: StubServer, closed_port: int, no_dns: NoDns
) -> AsyncIterator[SandboxRunner]:
    hosts = frozenset({fake_server.url.removeprefix("http://"), f"127.0.0.1:{closed_port}"})
    sandbox = SandboxRunner(policy=EgressPolicy(allow_http_hosts=hosts), resolver=no_dns)
    async with sandbox:
        yield sandbox


@pytest.fixture
def stub(fake_server: StubServer, no_dns: NoDns) -> StubServer:
    """The module's provider fake, with no requests recorded and no answer configured."""
    fake_server.requests.clear()
    fake_server.respond(501, {"message": "no answer configured"})
    no_dns.asked.clear()
    return fake_server


_tenants = itertools.count(1)


@pytest.fixture
def fresh_tenant() -> str:
    """A tenant of its own: an empty api.cache (the cache is per tenant)."""
    return f"tenant-{next(_tenants)}"


async def run(
    runner: SandboxRunner,
    sample: str,
    data: dict[str, Any],
    secrets: dict[str, str],
    *,
    trigger: Trigger | None = None,
    tenant: str = "acme",
) -> InvocationResult:
    return await runner.run(
        tenant=tenant,
        name=sample,
        source=source(sample),
        trigger=trigger or SAMPLES[sample][0],
        event=data,
        secrets=secrets,
    )


def only_request(stub: StubServer) -> RecordedRequest:
    assert len(stub.requests) == 1, [r.path for r in stub.requests]
    return stub.requests[0]


def json_body(request: RecordedRequest) -> Any:
    assert request.headers["content-type"].startswith("application/json")
    return json.loads(request.body)


# -- every sample -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "trigger"), [(s, t) for s, triggers in SAMPLES.items() for t in triggers]
)
def test_sample_compiles_cleanly(sample: str, trigger: Trigger) -> None:
    issues = check_action(source(sample), name=sample, trigger=trigger, limits=SandboxLimits())
    assert issues == []


def test_every_sample_is_listed() -> None:
    assert sorted(p.stem for p in ACTIONS.glob("*.py")) == sorted(SAMPLES)
    assert sorted(p.stem for p in EVENTS.glob("*.json")) == sorted(SAMPLES)


@pytest.mark.parametrize("sample", SAMPLES)
def test_docstring_names_the_trigger_and_every_secret(sample: str) -> None:
    text = source(sample)
    docstring = ast.get_docstring(ast.parse(text)) or ""
    for trigger in SAMPLES[sample]:
        assert trigger in docstring
        assert HANDLERS[trigger] in text
    read = set(re.findall(r'secret\(event, "([A-Z0-9_]+)"', text))
    read |= set(re.findall(r'secrets\.get\("([A-Z0-9_]+)"\)', text))
    assert read, "the sample reads no secrets?"
    assert [name for name in sorted(read) if name not in docstring] == []


@pytest.mark.parametrize("sample", SAMPLES)
def test_recorded_event_parses_and_holds_no_secrets(sample: str) -> None:
    raw = (EVENTS / f"{sample}.json").read_bytes()
    assert "secrets" not in json.loads(raw)
    parsed = parse_event(raw)
    assert parsed.trigger == SAMPLES[sample][0]


def test_recorded_events_cover_several_countries() -> None:
    recipients = {
        parse_event((EVENTS / f"{sample}.json").read_bytes()).model_dump(by_alias=True)[
            "message_options" if SAMPLES[sample][0] == "send-phone-message" else "notification"
        ]["recipient"]
        for sample in SAMPLES
    }
    assert len({r[:3] for r in recipients}) == len(SAMPLES)


# -- vonage_sms -------------------------------------------------------------------------------


def vonage_secrets(url: str | None) -> dict[str, str]:
    secrets = {
        "VONAGE_API_KEY": "a1b2c3d4",
        "VONAGE_API_SECRET": "vs3cret-Xy9",
        "VONAGE_FROM": "AcmeOTP",
    }
    if url is not None:
        secrets["VONAGE_BASE_URL"] = url + "/"
    return secrets


def vonage_answer(status: str = "0", error_text: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"to": "447911123456", "status": status}
    if status == "0":
        message |= {
            "message-id": "0A0000000123ABCD1",
            "remaining-balance": "3.14159265",
            "message-price": "0.03330000",
            "network": "23410",
        }
    else:
        message["error-text"] = error_text
    return {"message-count": "1", "messages": [message]}


@in_module_loop
async def test_vonage_sends_a_form_and_returns_the_message_id(
    runner: SandboxRunner, stub: StubServer
) -> None:
    stub.respond(200, vonage_answer())
    result = await run(runner, "vonage_sms", event("vonage_sms"), vonage_secrets(stub.url))

    assert result.outcome == "ok", result.error
    assert result.result == {
        "message_id": "0A0000000123ABCD1",
        "parts": 1,
        "remaining_balance": "3.14159265",
    }
    assert result.handed_off is True
    sent = only_request(stub)
    assert (sent.method, sent.path) == ("POST", "/sms/json")
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.form == {
        "api_key": ["a1b2c3d4"],
        "api_secret": ["vs3cret-Xy9"],
        "from": ["AcmeOTP"],
        "to": ["447911123456"],
        "text": ["730419 is your verification code for Acme"],
        "client-ref": ["uk-sms-3f9a21"],
    }


@in_module_loop
async def test_vonage_sends_non_ascii_text_as_unicode(
    runner: SandboxRunner, stub: StubServer
) -> None:
    stub.respond(200, vonage_answer())
    text = "730419 est votre code de vérification"
    data = event("vonage_sms", recipient="+33612345678", text=text)
    result = await run(runner, "vonage_sms", data, vonage_secrets(stub.url))
    assert result.outcome == "ok", result.error
    sent = only_request(stub)
    assert (sent.form["to"], sent.form["type"], sent.form["text"]) == (
        ["33612345678"],
        ["unicode"],
        [text],
    )


@in_module_loop
@pytest.mark.parametrize(
    ("status", "error_text", "meaning"),
    [
        ("1", "Throttled", "throttled"),
        ("2", "Missing from param", "missing parameters"),
        ("4", "Bad Credentials", "invalid credentials"),
        ("9", "Quota Exceeded - rejected", "partner quota exceeded"),
    ],
)
async def test_vonage_status_other_than_zero_fails_with_status_and_error_text(
    runner: SandboxRunner, stub: StubServer, status: str, error_text: str, meaning: str
) -> None:
    stub.respond(200, vonage_answer(status, error_text))
    result = await run(runner, "vonage_sms", event("vonage_sms"), vonage_secrets(stub.url))
    assert result.outcome == "runtime_error"
    assert result.error is not None
    assert result.error.startswith(f"Exception: Vonage status {status} ({meaning}")
    assert result.error.endswith(error_text)
    assert result.traceback[-1].strip().startswith("raise Exception(")
    # Vonage refuses with HTTP 200, and any 2xx counts as a hand-off: no fallback follows.
    assert result.handed_off is True


@in_module_loop
async def test_vonage_http_error_is_not_a_hand_off(runner: SandboxRunner, stub: StubServer) -> None:
    stub.respond(503, "upstream unavailable")
    result = await run(runner, "vonage_sms", event("vonage_sms"), vonage_secrets(stub.url))
    assert result.outcome == "runtime_error"
    assert result.error == "Exception: Vonage answered HTTP 503: upstream unavailable"
    assert result.handed_off is False


@in_module_loop
async def test_vonage_refuses_voice_without_sending(
    runner: SandboxRunner, stub: StubServer
) -> None:
    data = event("vonage_sms", message_type="voice")
    result = await run(runner, "vonage_sms", data, vonage_secrets(stub.url))
    assert result.outcome == "runtime_error"
    assert "sends SMS only" in (result.error or "")
    assert stub.requests == []
    assert result.http == []


@in_module_loop
async def test_vonage_defaults_to_rest_nexmo_com(
    runner: SandboxRunner, stub: StubServer, no_dns: NoDns
) -> None:
    result = await run(runner, "vonage_sms", event("vonage_sms"), vonage_secrets(None))
    assert result.outcome == "runtime_error"
    assert [call.url for call in result.http] == ["https://rest.nexmo.com/sms/json"]
    assert no_dns.asked == ["rest.nexmo.com"]  # refused here: no test reaches the network
    assert result.error == "ApiError: host rest.nexmo.com does not resolve to a public address"


@in_module_loop
async def test_vonage_missing_secret_names_it(runner: SandboxRunner, stub: StubServer) -> None:
    secrets = vonage_secrets(stub.url)
    del secrets["VONAGE_API_SECRET"]
    result = await run(runner, "vonage_sms", event("vonage_sms"), secrets)
    assert result.outcome == "runtime_error"
    assert "missing secret VONAGE_API_SECRET" in (result.error or "")
    assert stub.requests == []


# -- infobip_sms ------------------------------------------------------------------------------

INFOBIP_KEY = "ib-0123456789abcdef0123456789abcdef-0a1b2c3d"


def infobip_secrets(url: str) -> dict[str, str]:
    return {"INFOBIP_API_KEY": INFOBIP_KEY, "INFOBIP_BASE_URL": url, "INFOBIP_SENDER": "AcmeID"}


def infobip_answer(group: str = "PENDING", name: str = "PENDING_ACCEPTED") -> dict[str, Any]:
    status = {"groupId": 1, "groupName": group, "id": 26, "name": name, "description": "d"}
    return {
        "bulkId": "2034072219640523072",
        "messages": [{"messageId": "ib-msg-77", "status": status, "destination": "4915123456789"}],
    }


@in_module_loop
async def test_infobip_posts_v3_json_with_app_key(runner: SandboxRunner, stub: StubServer) -> None:
    stub.respond(200, infobip_answer())
    result = await run(runner, "infobip_sms", event("infobip_sms"), infobip_secrets(stub.url))

    assert result.outcome == "ok", result.error
    assert result.result == {
        "message_id": "ib-msg-77",
        "bulk_id": "2034072219640523072",
        "status": "PENDING_ACCEPTED",
    }
    assert result.handed_off is True
    sent = only_request(stub)
    assert (sent.method, sent.path) == ("POST", "/sms/3/messages")
    assert sent.headers["authorization"] == f"App {INFOBIP_KEY}"
    assert json_body(sent) == {
        "messages": [
            {
                "sender": "AcmeID",
                "destinations": [{"to": "4915123456789"}],
                "content": {"text": "915372 ist Ihr Bestätigungscode für Acme"},
            }
        ]
    }


LEGACY_401 = {
    "requestError": {
        "serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}
    }
}
NEW_400 = {
    "errorCode": "E400",
    "description": "Request cannot be processed.",
    "action": "Check the syntax, violations and adjust the request.",
    "violations": [{"property": "messages[0].destinations[0].to", "violation": "invalid number"}],
    "resources": [],
}


@in_module_loop
@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            401,
            LEGACY_401,
            "Infobip HTTP 401 (the API key was rejected; check INFOBIP_API_KEY): "
            "UNAUTHORIZED: Invalid login details",
        ),
        (
            400,
            NEW_400,
            "Infobip HTTP 400 (request refused): E400: Request cannot be processed.; "
            "messages[0].destinations[0].to invalid number",
        ),
        (
            429,
            {"errorCode": "E429", "description": "Too many requests"},
            "Infobip HTTP 429 (rate limit reached, try again later): E429: Too many requests",
        ),
        (
            500,
            "Internal Server Error",
            "Infobip HTTP 500 (Infobip server error, try again later): Internal Server Error",
        ),
    ],
    ids=["401-legacy", "400-violations", "429", "500"],
)
async def test_infobip_errors_are_mapped(
    runner: SandboxRunner, stub: StubServer, status: int, body: Any, expected: str
) -> None:
    stub.respond(status, body)
    result = await run(runner, "infobip_sms", event("infobip_sms"), infobip_secrets(stub.url))
    assert result.outcome == "runtime_error"
    assert result.error == f"Exception: {expected}"
    # a 500 may come after Infobip took the message: never a second code (a 4xx, a 503: no)
    assert result.handed_off is (status == 500)
    assert INFOBIP_KEY not in json.dumps(result.model_dump())


@in_module_loop
async def test_infobip_rejected_status_fails_after_hand_off(
    runner: SandboxRunner, stub: StubServer
) -> None:
    stub.respond(200, infobip_answer("REJECTED", "REJECTED_DESTINATION"))
    result = await run(runner, "infobip_sms", event("infobip_sms"), infobip_secrets(stub.url))
    assert result.outcome == "runtime_error"
    assert "REJECTED/REJECTED_DESTINATION" in (result.error or "")
    assert result.handed_off is True


# -- webhook_relay ----------------------------------------------------------------------------

WEBHOOK_SECRET = "whsec-6f1d2c9a8b7e4f30a1b2c3d4e5f60718"


def webhook_secrets(url: str) -> dict[str, str]:
    return {"WEBHOOK_URL": url + "/hooks/phone", "WEBHOOK_SECRET": WEBHOOK_SECRET}


def verify_signature(request: RecordedRequest) -> dict[str, Any]:
    """What the tenant's endpoint does: check the signature and the clock, then parse."""
    timestamp = request.headers["x-webhook-timestamp"]
    signed = timestamp.encode() + b"." + request.body
    expected = "v1=" + hmac.new(WEBHOOK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, request.headers["x-webhook-signature"])
    assert abs(time.time() - int(timestamp)) < 300
    payload: dict[str, Any] = json_body(request)
    assert payload["id"] == request.headers["x-webhook-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", payload["id"])
    return payload


@in_module_loop
async def test_webhook_relay_signs_the_exact_body(runner: SandboxRunner, stub: StubServer) -> None:
    stub.respond(202, {"id": "hook-msg-1"})
    result = await run(runner, "webhook_relay", event("webhook_relay"), webhook_secrets(stub.url))

    assert result.outcome == "ok", result.error
    assert result.result == {"message_id": "hook-msg-1"}
    assert result.handed_off is True
    sent = only_request(stub)
    assert (sent.method, sent.path) == ("POST", "/hooks/phone")
    payload = verify_signature(sent)
    assert payload | {"id": "-", "sent_at": "-"} == {
        "id": "-",
        "sent_at": "-",
        "trigger": "send-phone-message",
        "channel": "sms",
        "purpose": "second-factor-authentication",
        "recipient": "+14155552671",
        "text": "264801 is your verification code for Acme",
        "code": "264801",
        "locale": "en-US",
        "tenant": "acme",
        "client_id": "Wq7Rk2Lm9Np4Tz8Xc3Vb6Hj1Gf5Dd0Sa",
        "user_id": "auth0|64b7f0c2a1d3e5f7091b2c3d",
        "correlation_id": "us-hook-51d0bb",
    }


@in_module_loop
async def test_webhook_relay_signature_fails_with_another_secret(
    runner: SandboxRunner, stub: StubServer
) -> None:
    stub.respond(204)
    secrets = webhook_secrets(stub.url) | {"WEBHOOK_SECRET": "not-the-shared-secret"}
    result = await run(runner, "webhook_relay", event("webhook_relay"), secrets)
    assert result.outcome == "ok", result.error
    assert result.result["message_id"] == json.loads(stub.requests[0].body)["id"]
    with pytest.raises(AssertionError):
        verify_signature(only_request(stub))


@in_module_loop
@pytest.mark.parametrize(
    ("status", "words"), [(503, "webhook unavailable"), (400, "webhook refused the message")]
)
async def test_webhook_relay_non_2xx_fails_send_phone_message(
    runner: SandboxRunner, stub: StubServer, status: int, words: str
) -> None:
    stub.respond(status, "nope")
    result = await run(runner, "webhook_relay", event("webhook_relay"), webhook_secrets(stub.url))
    assert result.outcome == "runtime_error"
    assert result.error == f"Exception: {words}: HTTP {status} nope"
    assert result.handed_off is False


@in_module_loop
async def test_webhook_relay_custom_phone_provider_sends_voice_text(
    runner: SandboxRunner, stub: StubServer
) -> None:
    stub.respond(200, "ok")
    data = event("custom_provider", delivery_method="voice")
    result = await run(
        runner, "webhook_relay", data, webhook_secrets(stub.url), trigger="custom-phone-provider"
    )
    assert result.outcome == "ok", result.error
    assert result.notification is None
    payload = verify_signature(only_request(stub))
    assert result.result == {"message_id": payload["id"]}  # no JSON answer: our own id
    assert (payload["trigger"], payload["channel"], payload["purpose"]) == (
        "custom-phone-provider",
        "voice",
        "otp_verify",
    )
    assert payload["text"] == "Your verification code for Acme is 1. 8. 7. 2. 5. 4"
    assert (payload["from"], payload["locale"]) == ("+61491570006", "en_AU")


@in_module_loop
@pytest.mark.parametrize(
    ("status", "action"), [(500, "retry"), (503, "retry"), (429, "retry"), (400, "drop")]
)
async def test_webhook_relay_custom_phone_provider_retries_or_drops(
    runner: SandboxRunner, stub: StubServer, status: int, action: str
) -> None:
    stub.respond(status, "busy")
    result = await run(
        runner,
        "webhook_relay",
        event("custom_provider"),
        webhook_secrets(stub.url),
        trigger="custom-phone-provider",
    )
    assert result.outcome == "ok", result.error
    assert result.notification == {
        "action": action,
        "reason": f"webhook answered HTTP {status}: busy",
    }
    # the action asks for a retry; after a 500 the webhook may have the message: not run again
    assert result.handed_off is (status == 500)


@in_module_loop
async def test_webhook_relay_unreachable_endpoint_is_retried(
    runner: SandboxRunner, stub: StubServer, closed_port: int
) -> None:
    secrets = {"WEBHOOK_URL": f"http://127.0.0.1:{closed_port}/", "WEBHOOK_SECRET": "k" * 32}
    result = await run(
        runner, "webhook_relay", event("custom_provider"), secrets, trigger="custom-phone-provider"
    )
    assert result.outcome == "ok", result.error
    assert result.notification == {
        "action": "retry",
        "reason": "webhook not reached: could not connect to 127.0.0.1",
    }
    assert result.handed_off is False


# -- country_routing --------------------------------------------------------------------------


def routing_secrets(url: str, **extra: str) -> dict[str, str]:
    return {
        "VONAGE_API_KEY": "a1b2c3d4",
        "VONAGE_API_SECRET": "vs3cret-Xy9",
        "VONAGE_FROM": "AcmeOTP",
        "VONAGE_BASE_URL": url,
        "INFOBIP_API_KEY": INFOBIP_KEY,
        "INFOBIP_BASE_URL": url,
    } | extra


def two_providers(request: RecordedRequest) -> Reply:
    if request.path == "/sms/json":
        return 200, vonage_answer(), {}
    if request.path == "/sms/3/messages":
        return 200, infobip_answer(), {}
    return 404, {"error": "unknown path"}, {}


@in_module_loop
@pytest.mark.parametrize(
    ("recipient", "provider", "country", "path", "to"),
    [
        ("+33612345678", "vonage", "FR", "/sms/json", "33612345678"),
        ("+447911123456", "vonage", "GB", "/sms/json", "447911123456"),
        ("+4915123456789", "infobip", "DE", "/sms/3/messages", "4915123456789"),
        ("+919876543210", "infobip", "IN", "/sms/3/messages", "919876543210"),
        ("+14155552671", "infobip", "US", "/sms/3/messages", "14155552671"),
    ],
)
async def test_country_routing_picks_the_provider_by_number_prefix(
    runner: SandboxRunner,
    stub: StubServer,
    recipient: str,
    provider: str,
    country: str,
    path: str,
    to: str,
) -> None:
    stub.respond_with(two_providers)
    data = event("country_routing", recipient=recipient)  # the user is roaming in Spain
    result = await run(runner, "country_routing", data, routing_secrets(stub.url))

    assert result.outcome == "ok", result.error
    expected_id = "0A0000000123ABCD1" if provider == "vonage" else "ib-msg-77"
    assert result.result == {"provider": provider, "country": country, "message_id": expected_id}
    prefix = next(p for p in ("+44", "+33", "+49", "+91", "+1") if recipient.startswith(p))
    assert result.logs == [
        f"[info] routing {recipient[:4]}... to {provider}: country {country} "
        f"from number prefix {prefix}"
    ]
    sent = only_request(stub)
    assert sent.path == path
    if provider == "vonage":
        assert sent.form["to"] == [to]
    else:
        assert sent.headers["authorization"] == f"App {INFOBIP_KEY}"
        assert json_body(sent)["messages"][0]["destinations"] == [{"to": to}]


@in_module_loop
@pytest.mark.parametrize(("geoip", "provider"), [("GB", "vonage"), ("ES", "infobip")])
async def test_country_routing_falls_back_to_geoip_for_unknown_prefixes(
    runner: SandboxRunner, stub: StubServer, geoip: str, provider: str
) -> None:
    stub.respond_with(two_providers)
    data = event("country_routing", recipient="+263771234567")  # Zimbabwe: not in the table
    data["request"]["geoip"]["countryCode"] = geoip
    result = await run(runner, "country_routing", data, routing_secrets(stub.url))
    assert result.outcome == "ok", result.error
    assert result.result["provider"] == provider
    assert result.logs == [
        f"[info] routing +263... to {provider}: country {geoip} from login location (geoip)"
    ]


@in_module_loop
async def test_country_routing_without_any_country_uses_the_default_route(
    runner: SandboxRunner, stub: StubServer
) -> None:
    stub.respond_with(two_providers)
    data = event("country_routing", recipient="+263771234567")
    del data["request"]["geoip"]
    result = await run(runner, "country_routing", data, routing_secrets(stub.url))
    assert result.outcome == "ok", result.error
    assert result.result == {"provider": "infobip", "country": None, "message_id": "ib-msg-77"}
    assert "from nothing (default route)" in result.logs[0]


@in_module_loop
async def test_country_routing_table_comes_from_a_secret(
    runner: SandboxRunner, stub: StubServer
) -> None:
    stub.respond_with(two_providers)
    secrets = routing_secrets(stub.url, ROUTE_VONAGE_COUNTRIES="de, at")
    data = event("country_routing", recipient="+4915123456789")
    result = await run(runner, "country_routing", data, secrets)
    assert result.result["provider"] == "vonage"
    data = event("country_routing")  # France, no longer on the Vonage list
    result = await run(runner, "country_routing", data, secrets)
    assert result.result["provider"] == "infobip"


@in_module_loop
async def test_country_routing_does_not_fail_over_to_the_other_provider(
    runner: SandboxRunner, stub: StubServer
) -> None:
    stub.respond(200, vonage_answer("9", "Quota Exceeded - rejected"))
    result = await run(
        runner, "country_routing", event("country_routing"), routing_secrets(stub.url)
    )
    assert result.outcome == "runtime_error"
    assert result.error == "Exception: Vonage status 9: Quota Exceeded - rejected"
    assert [r.path for r in stub.requests] == ["/sms/json"]


# -- voice_tts --------------------------------------------------------------------------------


def tts_secrets(url: str, **extra: str) -> dict[str, str]:
    return {
        "INFOBIP_API_KEY": INFOBIP_KEY,
        "INFOBIP_BASE_URL": url,
        "INFOBIP_VOICE_FROM": "41793026700",
    } | extra


def tts_answer(group: str = "PENDING") -> dict[str, Any]:
    status = {"groupId": 1, "groupName": group, "id": 26, "name": f"{group}_X", "description": "d"}
    return {
        "bulkId": "tts-bulk-1",
        "messages": [{"to": "34612345678", "status": status, "messageId": "tts-msg-1"}],
    }


@in_module_loop
async def test_voice_tts_calls_the_advanced_tts_api(
    runner: SandboxRunner, stub: StubServer
) -> None:
    stub.respond(200, tts_answer())
    result = await run(runner, "voice_tts", event("voice_tts"), tts_secrets(stub.url))

    assert result.outcome == "ok", result.error
    assert result.result == {"message_id": "tts-msg-1", "bulk_id": "tts-bulk-1", "language": "es"}
    assert result.handed_off is True
    sent = only_request(stub)
    assert (sent.method, sent.path) == ("POST", "/tts/3/advanced")
    assert sent.headers["authorization"] == f"App {INFOBIP_KEY}"
    text = "Su código de verificación es 6. 0. 3. 9. 2. 7"
    assert json_body(sent) == {
        "messages": [
            {
                "from": "41793026700",
                "destinations": [{"to": "34612345678"}],
                "text": f"{text}. {text}",
                "language": "es",
            }
        ]
    }


@in_module_loop
async def test_voice_tts_spells_plain_digit_codes_and_picks_a_voice(
    runner: SandboxRunner, stub: StubServer
) -> None:
    stub.respond(200, tts_answer())
    data = event("voice_tts", text="Your code is 603927")
    data["request"]["language"] = "xx-YY"  # unknown: English
    result = await run(
        runner, "voice_tts", data, tts_secrets(stub.url, INFOBIP_VOICE_NAME="Joanna")
    )
    assert result.outcome == "ok", result.error
    [message] = json_body(only_request(stub))["messages"]
    spoken = "Your code is 6, 0, 3, 9, 2, 7"
    assert (message["text"], message["language"]) == (f"{spoken}. {spoken}", "en")
    assert message["voice"] == {"name": "Joanna"}


@in_module_loop
async def test_voice_tts_refuses_sms_without_sending(
    runner: SandboxRunner, stub: StubServer
) -> None:
    data = event("voice_tts", message_type="sms")
    result = await run(runner, "voice_tts", data, tts_secrets(stub.url))
    assert result.outcome == "runtime_error"
    assert "places voice calls only and refuses to send an sms message" in (result.error or "")
    assert (stub.requests, result.handed_off) == ([], False)


@in_module_loop
@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, LEGACY_401, "Infobip HTTP 401: the API key was rejected: UNAUTHORIZED: Invalid"),
        (429, {}, "Infobip HTTP 429: rate limit reached, try again later"),
        (502, "Bad Gateway", "Infobip HTTP 502: server error, try again later"),
        (400, NEW_400, "Infobip HTTP 400: E400: Request cannot be processed."),
    ],
)
async def test_voice_tts_errors_are_mapped(
    runner: SandboxRunner, stub: StubServer, status: int, body: Any, expected: str
) -> None:
    stub.respond(status, body)
    result = await run(runner, "voice_tts", event("voice_tts"), tts_secrets(stub.url))
    assert result.outcome == "runtime_error"
    assert (result.error or "").startswith(f"Exception: {expected}")
    assert result.handed_off is (status == 502)  # a gateway's 502 may come after the call


@in_module_loop
async def test_voice_tts_rejected_call_fails(runner: SandboxRunner, stub: StubServer) -> None:
    stub.respond(200, tts_answer("REJECTED"))
    result = await run(runner, "voice_tts", event("voice_tts"), tts_secrets(stub.url))
    assert result.outcome == "runtime_error"
    assert result.error == "Exception: Infobip did not accept the call: REJECTED_X: d"


# -- custom_provider --------------------------------------------------------------------------

CLIENT_ID = "acme-otp-client"
CLIENT_SECRET = "cs-9f8e7d6c5b4a3210"


def cpaas_secrets(url: str, **extra: str) -> dict[str, str]:
    return {
        "PROVIDER_BASE_URL": url,
        "PROVIDER_CLIENT_ID": CLIENT_ID,
        "PROVIDER_CLIENT_SECRET": CLIENT_SECRET,
    } | extra


class Cpaas:
    """A provider with an OAuth2 token endpoint: issues tok-1, tok-2, ...; can revoke them."""

    def __init__(self, send_status: int = 202, token_status: int = 200) -> None:
        self.send_status = send_status
        self.token_status = token_status
        self.issued = 0
        self.revoked: set[str] = set()

    def __call__(self, request: RecordedRequest) -> Reply:
        if request.path == "/oauth2/token":
            if self.token_status != 200:
                error = {"error": "invalid_client" if self.token_status < 500 else "server_error"}
                return self.token_status, error, {}
            self.issued += 1
            answer = {
                "access_token": f"tok-{self.issued}",
                "token_type": "Bearer",
                "expires_in": 3600,
            }
            return 200, answer, {}
        if request.path == "/v1/messages":
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if token in self.revoked:
                return 401, {"error": "invalid_token"}, {}
            if self.send_status >= 300:
                return self.send_status, {"error": {"code": "E", "message": "no"}}, {}
            return self.send_status, {"id": f"cp-{len(request.body)}", "status": "queued"}, {}
        return 404, {"error": "unknown path"}, {}


def basic_auth(request: RecordedRequest) -> str:
    scheme, _, value = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(value).decode()


@in_module_loop
async def test_custom_provider_gets_a_token_then_sends_text(
    runner: SandboxRunner, stub: StubServer, fresh_tenant: str
) -> None:
    stub.respond_with(Cpaas())
    result = await run(
        runner,
        "custom_provider",
        event("custom_provider"),
        cpaas_secrets(stub.url),
        tenant=fresh_tenant,
    )

    assert result.outcome == "ok", result.error
    assert result.notification is None
    assert result.result is not None
    assert result.result["status"] == "queued"
    assert result.handed_off is True
    token_request, send_request = stub.requests
    assert token_request.path == "/oauth2/token"
    assert basic_auth(token_request) == f"{CLIENT_ID}:{CLIENT_SECRET}"
    assert token_request.form == {"grant_type": ["client_credentials"], "scope": ["messages:send"]}
    assert send_request.path == "/v1/messages"
    assert send_request.headers["authorization"] == "Bearer tok-1"
    assert json_body(send_request) == {
        "to": "+61412345678",
        "from": "+61491570006",
        "channel": "sms",
        "text": "187254 is your verification code for Acme",
        "locale": "en_AU",
        "purpose": "otp_verify",
        "reference": "au-cpp-9e2f40",
    }


@in_module_loop
async def test_custom_provider_caches_the_token(
    runner: SandboxRunner, stub: StubServer, fresh_tenant: str
) -> None:
    stub.respond_with(Cpaas())
    for _ in range(3):
        result = await run(
            runner,
            "custom_provider",
            event("custom_provider"),
            cpaas_secrets(stub.url),
            tenant=fresh_tenant,
        )
        assert result.outcome == "ok", result.error
    assert [r.path for r in stub.requests] == ["/oauth2/token"] + ["/v1/messages"] * 3
    assert {r.headers["authorization"] for r in stub.requests[1:]} == {"Bearer tok-1"}


@in_module_loop
async def test_custom_provider_renews_a_revoked_token_once(
    runner: SandboxRunner, stub: StubServer, fresh_tenant: str
) -> None:
    cpaas = Cpaas()
    stub.respond_with(cpaas)
    secrets = cpaas_secrets(stub.url)
    await run(runner, "custom_provider", event("custom_provider"), secrets, tenant=fresh_tenant)
    cpaas.revoked.add("tok-1")
    stub.requests.clear()

    result = await run(
        runner, "custom_provider", event("custom_provider"), secrets, tenant=fresh_tenant
    )
    assert result.outcome == "ok", result.error
    assert result.notification is None
    assert [(r.path, r.headers.get("authorization", "")[:6]) for r in stub.requests] == [
        ("/v1/messages", "Bearer"),
        ("/oauth2/token", "Basic "),
        ("/v1/messages", "Bearer"),
    ]
    assert stub.requests[2].headers["authorization"] == "Bearer tok-2"


@in_module_loop
async def test_custom_provider_sends_as_voice_for_voice(
    runner: SandboxRunner, stub: StubServer, fresh_tenant: str
) -> None:
    stub.respond_with(Cpaas())
    data = event("custom_provider", delivery_method="voice")
    del data["notification"]["from"]
    secrets = cpaas_secrets(stub.url, PROVIDER_FROM="+61255501234")
    result = await run(runner, "custom_provider", data, secrets, tenant=fresh_tenant)
    assert result.outcome == "ok", result.error
    body = json_body(stub.requests[-1])
    assert (body["channel"], body["from"]) == ("voice", "+61255501234")
    assert body["text"] == "Your verification code for Acme is 1. 8. 7. 2. 5. 4"


@in_module_loop
@pytest.mark.parametrize(
    ("send_status", "action"),
    [(500, "retry"), (503, "retry"), (429, "retry"), (400, "drop"), (422, "drop")],
)
async def test_custom_provider_retries_or_drops_by_status(
    runner: SandboxRunner, stub: StubServer, fresh_tenant: str, send_status: int, action: str
) -> None:
    cpaas = Cpaas(send_status=send_status)
    stub.respond_with(cpaas)
    result = await run(
        runner,
        "custom_provider",
        event("custom_provider"),
        cpaas_secrets(stub.url),
        tenant=fresh_tenant,
    )
    assert result.outcome == "ok", result.error
    assert result.notification == {
        "action": action,
        "reason": f'provider answered HTTP {send_status}: {{"code": "E", "message": "no"}}',
    }


@in_module_loop
async def test_custom_provider_drops_when_the_renewed_token_is_refused_too(
    runner: SandboxRunner, stub: StubServer, fresh_tenant: str
) -> None:
    cpaas = Cpaas()
    stub.respond_with(cpaas)
    secrets = cpaas_secrets(stub.url)
    await run(runner, "custom_provider", event("custom_provider"), secrets, tenant=fresh_tenant)
    cpaas.revoked |= {"tok-1", "tok-2"}
    result = await run(
        runner, "custom_provider", event("custom_provider"), secrets, tenant=fresh_tenant
    )
    assert result.notification == {
        "action": "drop",
        "reason": 'provider answered HTTP 401: "invalid_token"',
    }
    assert len(stub.requests) == 5  # token, send | send (401), token, send (401): no loop


@in_module_loop
@pytest.mark.parametrize(("token_status", "action"), [(401, "drop"), (503, "retry")])
async def test_custom_provider_token_endpoint_failures(
    runner: SandboxRunner, stub: StubServer, fresh_tenant: str, token_status: int, action: str
) -> None:
    stub.respond_with(Cpaas(token_status=token_status))
    result = await run(
        runner,
        "custom_provider",
        event("custom_provider"),
        cpaas_secrets(stub.url),
        tenant=fresh_tenant,
    )
    assert result.outcome == "ok", result.error
    assert result.notification is not None
    assert result.notification["action"] == action
    assert result.notification["reason"].startswith(f"token request failed: HTTP {token_status} ")
    assert [r.path for r in stub.requests] == ["/oauth2/token"]
    assert result.handed_off is False


@in_module_loop
async def test_custom_provider_unreachable_is_retried(
    runner: SandboxRunner, stub: StubServer, fresh_tenant: str, closed_port: int
) -> None:
    secrets = cpaas_secrets(f"http://127.0.0.1:{closed_port}")
    result = await run(
        runner, "custom_provider", event("custom_provider"), secrets, tenant=fresh_tenant
    )
    assert result.outcome == "ok", result.error
    assert result.notification == {
        "action": "retry",
        "reason": "provider not reached: could not connect to 127.0.0.1",
    }
    assert result.handed_off is False


@in_module_loop
async def test_custom_provider_token_fetch_counts_as_a_hand_off(
    runner: SandboxRunner, stub: StubServer, fresh_tenant: str
) -> None:
    """Today any 2xx marks the message handed off, the token endpoint's too: the same 503
    is a hand-off with a cold cache and not with a warm one (see the report)."""
    cpaas = Cpaas()
    stub.respond_with(cpaas)
    secrets = cpaas_secrets(stub.url)
    cpaas.send_status = 503
    cold = await run(
        runner, "custom_provider", event("custom_provider"), secrets, tenant=fresh_tenant
    )
    warm = await run(
        runner, "custom_provider", event("custom_provider"), secrets, tenant=fresh_tenant
    )
    assert cold.notification == warm.notification
    assert cold.notification is not None
    assert cold.notification["action"] == "retry"
    assert (cold.handed_off, warm.handed_off) == (True, False)


# -- through the pipeline ---------------------------------------------------------------------


@pytest.fixture
def provider_fake() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def pipeline_with(
    make_pipeline: PipelineFactory,
    fake: StubServer,
    provider: str,
    sample: str,
    secrets: dict[str, str],
    attempt_timeout: float = 5.0,  # generous for a loaded CI machine
    **tenant: Any,
) -> Any:
    """A pipeline whose tenant ``acme`` delivers through the sample, with ``secrets``."""
    table: dict[str, Any] = {
        "message_types": ["sms", "voice"],
        "provider": provider,
        "provider_settings": {"script": str(ACTIONS / f"{sample}.py")},
        "credentials_env": {name: f"ACME_{name}" for name in secrets},
    }
    table.update(tenant)
    return make_pipeline(
        {"acme": table},
        environ={f"ACME_{name}": value for name, value in secrets.items()},
        sandbox_allow_http_hosts=[fake.url.removeprefix("http://")],
        attempt_timeout=attempt_timeout,
    )


def request(**fields: Any) -> PhoneMessageRequest:
    values: dict[str, Any] = {"tenant": "acme", "recipient": "+447911123456", "code": "552901"}
    return PhoneMessageRequest.create(**(values | fields))


async def test_pipeline_delivers_through_vonage_sms(
    make_pipeline: PipelineFactory, provider_fake: StubServer
) -> None:
    provider_fake.respond(200, vonage_answer())
    secrets = vonage_secrets(provider_fake.url)
    pipeline = pipeline_with(
        make_pipeline, provider_fake, "phone-message-hook", "vonage_sms", secrets
    )
    report = await pipeline.deliver(request())

    assert (report.status, report.delivered_by) == ("delivered", "phone-message-hook")
    assert report.attempts[0].message_id == "0A0000000123ABCD1"
    sent = only_request(provider_fake)
    assert sent.form["to"] == ["447911123456"]
    assert "552901" in sent.form["text"][0]
    assert "552901" not in report.model_dump_json()


async def test_pipeline_vonage_refusal_is_handed_off_so_never_falls_back(
    make_pipeline: PipelineFactory, provider_fake: StubServer
) -> None:
    provider_fake.respond(200, vonage_answer("9", "Quota Exceeded - rejected"))
    secrets = vonage_secrets(provider_fake.url)
    pipeline = pipeline_with(
        make_pipeline, provider_fake, "phone-message-hook", "vonage_sms", secrets, fallback="always"
    )
    report = await pipeline.deliver(request())
    assert (report.status, report.reason) == ("failed", "handed_off")
    [attempt] = report.attempts
    assert attempt.error_code == "action_error"
    assert "Vonage status 9" in (attempt.error or "")


async def test_pipeline_delivers_through_custom_provider(
    make_pipeline: PipelineFactory, provider_fake: StubServer
) -> None:
    provider_fake.respond_with(Cpaas())
    secrets = cpaas_secrets(provider_fake.url)
    pipeline = pipeline_with(make_pipeline, provider_fake, "custom", "custom_provider", secrets)
    report = await pipeline.deliver(request(channel="voice", recipient="+61412345678"))

    assert (report.status, report.delivered_by) == ("delivered", "custom")
    assert (report.attempts[0].message_id or "").startswith("cp-")
    token_request, send_request = provider_fake.requests
    assert basic_auth(token_request) == f"{CLIENT_ID}:{CLIENT_SECRET}"
    body = json_body(send_request)
    assert (body["channel"], body["to"], body["purpose"]) == ("voice", "+61412345678", "otp_verify")
    assert "5. 5. 2. 9. 0. 1" in body["text"]


async def test_pipeline_custom_provider_retry_is_a_retryable_attempt(
    make_pipeline: PipelineFactory, provider_fake: StubServer
) -> None:
    provider_fake.respond_with(Cpaas(token_status=503))
    secrets = cpaas_secrets(provider_fake.url)
    pipeline = pipeline_with(
        make_pipeline, provider_fake, "custom", "custom_provider", secrets, fallback="retryable"
    )
    report = await pipeline.deliver(request())
    first = report.attempts[0]
    assert (first.error_code, first.retryable, first.handed_off) == (
        "notification_retry",
        True,
        False,
    )
    # Auth0 retries such a delivery later: the first report says so, and no fallback happens
    # while retries remain (tests/test_notification_retry.py follows the retries).
    assert report.path == ["custom"]
    assert (report.status, report.reason) == ("retrying", "notification_retry")


async def test_pipeline_webhook_5xx_falls_back_to_the_default_sender(
    make_pipeline: PipelineFactory, provider_fake: StubServer
) -> None:
    provider_fake.respond(503, "maintenance")
    secrets = webhook_secrets(provider_fake.url)
    pipeline = pipeline_with(
        make_pipeline,
        provider_fake,
        "phone-message-hook",
        "webhook_relay",
        secrets,
        fallback="always",
    )
    report = await pipeline.deliver(request())
    assert report.path == ["phone-message-hook", "outbox"]
    assert (report.status, report.delivered_by) == ("stored", "outbox")
    assert report.attempts[0].error == "Exception: webhook unavailable: HTTP 503 maintenance"
    verify_signature(only_request(provider_fake))


async def test_pipeline_webhook_that_never_answers_must_not_fall_back(
    make_pipeline: PipelineFactory, provider_fake: StubServer
) -> None:
    secrets = webhook_secrets(provider_fake.url)
    pipeline = pipeline_with(
        make_pipeline,
        provider_fake,
        "phone-message-hook",
        "webhook_relay",
        secrets,
        attempt_timeout=1.0,
        fallback="always",
    )
    provider_fake.respond(200)
    warm_up = await pipeline.deliver(request())  # the sandbox starts: not part of the budget
    assert warm_up.status == "delivered"
    provider_fake.hang()  # reads the whole request, so the endpoint has the code: never answers
    report = await pipeline.deliver(request(code="771204"))
    assert len(provider_fake.requests) == 2
    assert report.attempts[0].error_code == "action_timeout"
    assert (report.status, report.reason) == ("failed", "handed_off")
