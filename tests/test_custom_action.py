"""Delivery by the tenant's own action through the pipeline: the real sandbox, a local fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugins.custom_action import (
    MAX_MESSAGE_ID,
    SERVER_IP,
    SERVER_METHOD,
    auth0_locale,
    trigger_event,
)
from runtime import PhoneMessageRequest
from runtime.events import CustomPhoneProviderEvent, RequestContext, SendPhoneMessageEvent
from runtime.providers import PhoneMessage
from tests.conftest import PipelineFactory, read_log
from tests.support.stub_server import StubServer

SEND = """
def on_execute_send_phone_message(event, api):
    mo = event.message_options
    r = api.http.post(event.secrets.SMS_URL, json={"to": mo.recipient, "text": mo.text},
                      headers={"Authorization": "Bearer " + event.secrets.SMS_KEY})
    if r["status"] >= 300:
        raise Exception("provider said " + str(r["status"]))
    print("sent with key", event.secrets.SMS_KEY)
    return {"message_id": r["json"]["id"]}
"""

CUSTOM = """
def on_execute_custom_phone_provider(event, api):
    n = event.notification
    r = api.http.post(event.secrets.SMS_URL, json={"to": n.recipient, "text": n.as_text})
    if r["status"] >= 500:
        api.notification.retry("provider unavailable")
    elif r["status"] >= 400:
        api.notification.drop("rejected: " + str(r["status"]))
"""

CRASH = """
def on_execute_send_phone_message(event, api):
    x = 1
    return x / 0
"""


@pytest.fixture
def fake() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def make(
    make_pipeline: PipelineFactory,
    tmp_path: Path,
    fake: StubServer,
    provider: str,
    source: str,
    **tenant: Any,
) -> Any:
    script = tmp_path / "action.py"
    script.write_text(source)
    table: dict[str, Any] = {
        "message_types": ["sms", "voice"],
        "provider": provider,
        "provider_settings": {"script": str(script), "name": "acme-sms"},
        "credentials_env": {"SMS_URL": "ACME_URL", "SMS_KEY": "ACME_KEY"},
    }
    table.update(tenant)
    return make_pipeline(
        {"acme": table},
        environ={"ACME_URL": f"{fake.url}/send", "ACME_KEY": "sk-acme-secret"},
        sandbox_allow_http_hosts=[fake.url.removeprefix("http://")],
    )


def request(**fields: Any) -> PhoneMessageRequest:
    return PhoneMessageRequest.create(
        tenant="acme", recipient="+447911123456", code="246810", **fields
    )


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        ("return {'message_id': 'made-up'}", None),  # no request at all
        ("api.http.post(event.secrets.SMS_URL, json={})\n    return {'id': 'x'}", 400),
    ],
    ids=["no-request", "refused-4xx"],
)
async def test_an_action_that_hands_the_message_to_nobody_has_not_delivered_it(
    make_pipeline: PipelineFactory,
    tmp_path: Path,
    fake: StubServer,
    body: str,
    answer: int | None,
) -> None:
    """An action that returns normally without any request a server may have taken (none at
    all, as the default handler a new action starts with; or one refused with a 4xx that it
    ignores) reached no phone: not "delivered", and nothing was handed off, so the tenant's
    fallback rules apply (here: to the default sender)."""
    if answer is not None:
        fake.respond(answer, {"error": "bad number"})
    source = f"def on_execute_send_phone_message(event, api):\n    {body}\n"
    pipeline = make(make_pipeline, tmp_path, fake, "phone-message-hook", source, fallback="always")
    report = await pipeline.deliver(request())
    first = report.attempts[0]
    assert (first.outcome, first.error_code, first.handed_off) == ("failed", "nothing_sent", False)
    assert "nothing reached a phone" in (first.error or "")
    assert report.status != "delivered" or report.delivered_by != "phone-message-hook"
    assert [a.provider for a in report.attempts][1:] == ["outbox"]  # fell back: nothing went out
    assert next(e["type"] for e in read_log(pipeline)) == "gd_send_sms_failure"


async def test_phone_message_hook_delivers_through_the_action(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    fake.respond(200, {"id": "ext-42"})
    pipeline = make(make_pipeline, tmp_path, fake, "phone-message-hook", SEND)
    report = await pipeline.deliver(request())

    assert (report.status, report.delivered_by) == ("delivered", "phone-message-hook")
    assert report.attempts[0].message_id == "ext-42"
    [sent] = fake.requests
    assert sent.headers["authorization"] == "Bearer sk-acme-secret"
    assert b"246810 is your verification code" in sent.body


async def test_failure_after_hand_off_never_falls_back(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    fake.respond(202, {"id": "x"})  # accepted, then the action crashes anyway
    source = SEND.replace('    return {"message_id"', '    1 / 0\n    return {"message_id"')
    pipeline = make(make_pipeline, tmp_path, fake, "phone-message-hook", source, fallback="always")
    report = await pipeline.deliver(request())
    assert report.status == "failed"
    assert report.reason == "handed_off"
    assert report.attempts[0].error_code == "action_error"


async def test_failure_before_hand_off_falls_back(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    pipeline = make(make_pipeline, tmp_path, fake, "phone-message-hook", CRASH, fallback="always")
    report = await pipeline.deliver(request())
    assert report.path == ["phone-message-hook", "outbox"]
    assert report.status == "stored"
    assert "ZeroDivisionError" in (report.attempts[0].error or "")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(503, "notification_retry", True), (400, "notification_drop", False)],
)
async def test_custom_phone_provider_drop_and_retry(
    make_pipeline: PipelineFactory,
    tmp_path: Path,
    fake: StubServer,
    status: int,
    code: str,
    retryable: bool,
) -> None:
    fake.respond(status, {"error": "no"})
    pipeline = make(make_pipeline, tmp_path, fake, "custom", CUSTOM, fallback="never")
    report = await pipeline.deliver(request())
    [attempt] = report.attempts
    assert (attempt.error_code, attempt.retryable, attempt.handed_off) == (code, retryable, False)


async def test_secrets_never_reach_the_report(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    source = (
        "def on_execute_send_phone_message(event, api):\n"
        "    print('key', event.secrets.SMS_KEY)\n"
        "    raise Exception('key ' + event.secrets.SMS_KEY + ' code '"
        " + event.message_options.code)\n"
    )
    pipeline = make(make_pipeline, tmp_path, fake, "phone-message-hook", source, fallback="never")
    report = await pipeline.deliver(request())
    assert report.attempts[0].error == "Exception: key ****** code ******"
    assert "sk-acme-secret" not in report.model_dump_json()
    assert "246810" not in report.model_dump_json()


async def test_a_message_id_holding_the_code_reaches_neither_report_nor_log(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    """The sandbox's masker leaves a code run into other digits alone (``9246810``): the
    message id an action returns is masked once more, as a plain substring."""
    source = (
        "def on_execute_send_phone_message(event, api):\n"
        "    api.http.post(event.secrets.SMS_URL, json={})\n"
        "    return {'message_id': '9' + event.message_options.code + '7'}\n"
    )
    pipeline = make(make_pipeline, tmp_path, fake, "phone-message-hook", source, fallback="never")
    report = await pipeline.deliver(request())
    assert report.status == "delivered"
    assert report.attempts[0].message_id == "9******7"
    assert "246810" not in report.model_dump_json()
    events = read_log(pipeline)
    assert [e["details"]["delivery_id"] for e in events] == [report.id]
    assert "246810" not in json.dumps(events)


async def test_a_huge_message_id_is_cut_before_it_reaches_the_report_and_log(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    source = (
        "def on_execute_send_phone_message(event, api):\n"
        "    api.http.post(event.secrets.SMS_URL, json={})\n"
        "    return {'message_id': 'M' * 260000}\n"
    )
    pipeline = make(make_pipeline, tmp_path, fake, "phone-message-hook", source, fallback="never")
    report = await pipeline.deliver(request())
    assert report.status == "delivered"
    assert report.attempts[0].message_id == "M" * (MAX_MESSAGE_ID - 1) + "…"
    assert len(report.model_dump_json()) < 10_000
    assert max(len(json.dumps(event)) for event in read_log(pipeline)) < 10_000


async def test_missing_script_is_a_clear_failure(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    pipeline = make(
        make_pipeline,
        tmp_path,
        fake,
        "phone-message-hook",
        SEND,
        fallback="never",
        provider_settings={"script": str(tmp_path / "nope.py")},
    )
    report = await pipeline.deliver(request())
    assert report.attempts[0].error_code == "action_not_found"
    assert "nope.py" in (report.attempts[0].error or "")


async def test_a_folder_as_script_is_action_not_found(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    folder = tmp_path / "actions.py"
    folder.mkdir()
    pipeline = make(
        make_pipeline,
        tmp_path,
        fake,
        "phone-message-hook",
        SEND,
        fallback="never",
        provider_settings={"script": str(folder)},
    )
    report = await pipeline.deliver(request())
    attempt = report.attempts[0]
    assert attempt.error_code == "action_not_found", report.model_dump_json()
    assert "actions.py" in (attempt.error or "")
    assert attempt.handed_off is False


async def test_a_request_that_timed_out_after_sending_counts_as_handed_off(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    """The action gives up on its own (a per-call timeout) and raises: the server may still
    have the code, so there is no fallback and no second code."""
    source = (
        "def on_execute_send_phone_message(event, api):\n"
        "    try:\n"
        "        api.http.post(event.secrets.SMS_URL, json={}, timeout=0.3)\n"
        "    except ApiError as e:\n"
        "        raise Exception('gave up: ' + str(e))\n"
    )
    fake.hang()
    pipeline = make(make_pipeline, tmp_path, fake, "phone-message-hook", source, fallback="always")
    report = await pipeline.deliver(request())
    attempt = report.attempts[0]
    assert report.path == ["phone-message-hook"], report.model_dump_json()
    assert attempt.error_code == "action_error"
    assert "timed out" in (attempt.error or "")
    assert attempt.handed_off is True
    assert report.reason == "handed_off"
    assert len(fake.requests) == 1


# The event the pipeline builds (Auth0's event objects) -------------------------------------

SHOW_SPM = """
def on_execute_send_phone_message(event, api):
    api.http.post(event.secrets.SMS_URL, json={
        "ip": event.request.ip, "method": event.request.method,
        "transaction": event.get("transaction"), "delivery_id": event.delivery_id,
        "text": event.message_options.text})
"""

SHOW_CPP = """
def on_execute_custom_phone_provider(event, api):
    n = event.notification
    api.http.post(event.secrets.SMS_URL, json={
        "ip": event.request.ip, "method": event.request.method, "locale": n.locale,
        "as_text": n.as_text, "as_voice": n.as_voice, "delivery_method": n.delivery_method,
        "transaction": event.get("transaction"), "delivery_id": event.delivery_id})
"""


def shown(fake: StubServer) -> dict[str, Any]:
    """What the SHOW_* action posted about its event."""
    [sent] = fake.requests
    body: dict[str, Any] = json.loads(sent.body)
    return body


async def test_an_action_reads_request_ip_and_method_without_request_context(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    fake.respond(200, {"id": "x"})
    pipeline = make(make_pipeline, tmp_path, fake, "phone-message-hook", SHOW_SPM)
    report = await pipeline.deliver(request())
    assert report.attempts[0].outcome == "delivered", report.attempts[0].error
    seen = shown(fake)
    assert (seen["ip"], seen["method"]) == (SERVER_IP, SERVER_METHOD) == ("0.0.0.0", "POST")
    assert seen["transaction"] is None  # no correlation id given: no transaction, as Auth0
    assert seen["delivery_id"] == report.id


async def test_the_callers_request_context_and_correlation_id_reach_the_action(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    fake.respond(200, {"id": "x"})
    pipeline = make(make_pipeline, tmp_path, fake, "custom", SHOW_CPP)
    context = {"ip": "203.0.113.7", "language": "fr", "correlation_id": "c0ffee-42"}
    report = await pipeline.deliver(request(request=context))
    seen = shown(fake)
    assert (seen["ip"], seen["method"]) == ("203.0.113.7", "POST")  # the given ip is kept
    assert seen["transaction"] == {"correlation_id": "c0ffee-42"}
    assert seen["transaction"]["correlation_id"] != report.id
    assert seen["delivery_id"] == report.id


async def test_as_voice_is_the_voice_rendering_and_locale_auth0s_form(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    fake.respond(200, {"id": "x"})
    # the settings' tenants file (make_settings), where the action provider reads the tenant's
    # name and templates, as a pipeline built from that file does
    (tmp_path / "tenants.toml").write_text('[tenants.acme]\nfriendly_name = "Acme"\n')
    pipeline = make(make_pipeline, tmp_path, fake, "custom", SHOW_CPP, friendly_name="Acme")
    await pipeline.deliver(request(channel="voice", locale="en-us"))
    seen = shown(fake)
    assert seen["delivery_method"] == "voice"
    assert seen["as_voice"] == "Your verification code for Acme is 2. 4. 6. 8. 1. 0."
    assert seen["as_text"] == "246810 is your verification code for Acme."
    assert seen["locale"] == "en_US"


@pytest.mark.parametrize(
    ("given", "auth0"),
    [("en", "en_US"), ("en-GB", "en_GB"), ("fr-ca", "fr_CA"), ("pt_BR", "pt_BR"), ("ar", "ar")],
)
def test_locales_in_auth0s_form(given: str, auth0: str) -> None:
    assert auth0_locale(given) == auth0


async def test_as_voice_of_an_sms_uses_the_tenants_voice_template(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    fake.respond(200, {"id": "x"})
    voice = "{{ tenant.friendly_name }} says: {{ code }}"
    tenants = tmp_path / "tenants.toml"  # the settings' tenants file, as above
    tenants.write_text(
        f'[tenants.acme]\nfriendly_name = "Acme"\n[tenants.acme.voice_templates]\n'
        f'verification = "{voice}"\n'
    )
    pipeline = make(make_pipeline, tmp_path, fake, "custom", SHOW_CPP, friendly_name="Acme")
    await pipeline.deliver(request())
    seen = shown(fake)
    assert seen["as_text"] == "246810 is your verification code for Acme."
    assert seen["as_voice"] == "Acme says: 2. 4. 6. 8. 1. 0"


SHOW_FROM = """
def on_execute_custom_phone_provider(event, api):
    n = event.notification
    api.http.post(event.secrets.SMS_URL, json={"has_from": "from" in n, "from": n.get("from")})
"""


async def test_the_tenants_sender_is_notification_from(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    """A tenants file's ``senders``, read as the tenant's templates are. (The service's phone
    templates' ``content.from`` reach the action through its settings instead:
    tests/api/test_phone_template_from.py.)"""
    fake.respond(200, {"id": "x"})
    tenants = tmp_path / "tenants.toml"  # the settings' tenants file, as above
    tenants.write_text('[tenants.acme.senders]\nverification = "+15555550100"\n')
    pipeline = make(make_pipeline, tmp_path, fake, "custom", SHOW_FROM)
    await pipeline.deliver(request())
    assert shown(fake) == {"has_from": True, "from": "+15555550100"}
    fake.requests.clear()
    await pipeline.deliver(request(purpose="enrollment"))  # no sender for it: omitted
    assert shown(fake) == {"has_from": False, "from": None}


def test_notification_from_is_the_settings_sender_then_the_tenants() -> None:
    from runtime.tenants import TenantConfig

    message = PhoneMessage(
        id="d" * 32,
        tenant="acme",
        recipient="+447911123456",
        channel="sms",
        purpose="verification",
        locale="en",
        code="246810",
        text="246810 is your code",
        timeout=2.0,
    )
    tenant = TenantConfig(id="acme", senders={"verification": "+15555550111"})

    def sender(**given: Any) -> object:
        return trigger_event(message, "custom-phone-provider", **given)["notification"].get(
            "from", "omitted"
        )

    assert sender() == "omitted"
    assert sender(tenant=tenant) == "+15555550111"
    assert sender(tenant=tenant, senders={"verification": "+15555550100"}) == "+15555550100"
    assert sender(senders={"enrollment": "+15555550100"}) == "omitted"  # another purpose's
    spm = trigger_event(message, "send-phone-message", senders={"verification": "+15555550100"})
    assert "from" not in spm["message_options"]  # not a field of send-phone-message


def test_the_event_is_valid_for_its_trigger_model() -> None:
    message = PhoneMessage(
        id="d" * 32,
        tenant="acme",
        recipient="+447911123456",
        channel="sms",
        purpose="enrollment",
        locale="de",
        code="246810",
        text="246810 ist Ihr Code",
        timeout=2.0,
        request=RequestContext(method="GET", correlation_id="tx-1"),
    )
    event = trigger_event(message, "custom-phone-provider")
    assert event["request"] == {"ip": "0.0.0.0", "method": "GET", "geoip": {}}
    assert event["transaction"] == {"correlation_id": "tx-1"}
    assert event["notification"]["locale"] == "de_DE"
    assert event["notification"]["as_voice"].endswith("2. 4. 6. 8. 1. 0.")
    assert CustomPhoneProviderEvent.model_validate(event).request.ip == "0.0.0.0"
    spm = trigger_event(message, "send-phone-message")
    assert spm["message_options"]["text"] == "246810 ist Ihr Code"
    assert SendPhoneMessageEvent.model_validate(spm).transaction is not None


def test_a_secret_longer_than_the_sandbox_takes_is_refused_at_load() -> None:
    """A tenants file's secret over 4,096 characters: refused as configuration when loaded,
    not at the first send as a crash that counted as handed off (no fallback)."""
    from pydantic import ValidationError

    from plugins.custom_action import ActionSecrets

    with pytest.raises(ValidationError, match="the limit is 4096"):
        ActionSecrets.model_validate({"CERT_CHAIN": "x" * 4097})
    assert ActionSecrets.model_validate({"CERT_CHAIN": "x" * 4096}).as_dict()
