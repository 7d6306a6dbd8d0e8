"""Fallback rules end to end: the real Twilio plugin against a local stub, then the outbox.

The promise under test: fall back to the default sender only when Twilio failed *without*
handing the message off, when the tenant allows it, and when the default sender carries the
channel, so that no user ever receives two codes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import DeliveryReport, PhoneMessageRequest
from tests.conftest import PipelineFactory
from tests.support.stub_server import StubServer, free_port

SID = "AC" + "1" * 32
ENV = {"TW_SID": SID, "TW_TOKEN": "tw-secret-token"}
NUMBER = "+447911123456"


@pytest.fixture
def twilio() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def acme(base_url: str, **fields: Any) -> dict[str, dict[str, Any]]:
    settings = {"from_number": "+15017122661", "base_url": base_url}
    settings.update(fields.pop("provider_settings", {}))
    table: dict[str, Any] = {
        "friendly_name": "Acme",
        "message_types": ["sms", "voice"],
        "provider": "twilio",
        "provider_settings": settings,
        "credentials_env": {"account_sid": "TW_SID", "auth_token": "TW_TOKEN"},
    }
    table.update(fields)
    return {"acme": table}


async def deliver(
    make_pipeline: PipelineFactory, base_url: str, *, channel: str = "sms", **tenant: Any
) -> tuple[DeliveryReport, list[Any]]:
    overrides = {k: tenant.pop(k) for k in ("attempt_timeout", "outbox_cap") if k in tenant}
    pipeline = make_pipeline(acme(base_url, **tenant), environ=ENV, **overrides)
    report = await pipeline.deliver(
        PhoneMessageRequest.create(tenant="acme", recipient=NUMBER, code="735194", channel=channel)
    )
    outbox = pipeline.providers.get("outbox").messages("acme")  # type: ignore[attr-defined]
    pipeline.flush_logs()
    return report, outbox


def read_log_file(tmp_path: Path) -> list[dict[str, Any]]:
    text = (tmp_path / "data" / "events.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def twilio_error(code: int, status: int) -> dict[str, Any]:
    return {"code": code, "message": f"Twilio error {code}", "more_info": "", "status": status}


@pytest.mark.parametrize(
    ("status", "body"),
    [(429, twilio_error(20429, 429)), (503, "<html>down")],
)
async def test_retryable_failure_without_hand_off_falls_back_once(
    make_pipeline: PipelineFactory, twilio: StubServer, tmp_path: Path, status: int, body: Any
) -> None:
    twilio.respond(status, body)
    report, outbox = await deliver(make_pipeline, twilio.url)

    assert report.status == "stored"
    assert report.delivered_by == "outbox"
    assert report.path == ["twilio", "outbox"]
    first, second = report.attempts
    assert (first.outcome, first.retryable, first.handed_off) == ("failed", True, False)
    assert (second.outcome, second.fallback) == ("delivered", True)
    assert len(twilio.requests) == 1
    assert len(outbox) == 1
    assert [e["type"] for e in read_log_file(tmp_path)] == ["gd_send_sms_failure", "gd_send_sms"]


async def test_ambiguous_server_error_never_sends_a_second_code(
    make_pipeline: PipelineFactory, twilio: StubServer
) -> None:
    twilio.respond(502, "<html>Bad Gateway</html>")
    report, outbox = await deliver(make_pipeline, twilio.url, fallback="always")
    assert report.status == "failed"
    assert report.reason == "handed_off"
    assert outbox == []


async def test_connection_refused_falls_back(make_pipeline: PipelineFactory) -> None:
    report, outbox = await deliver(make_pipeline, f"http://127.0.0.1:{free_port()}")
    assert report.attempts[0].error_code == "connection_error"
    assert report.delivered_by == "outbox"
    assert len(outbox) == 1


@pytest.mark.parametrize("code", [21211, 21408, 21610, 21614])
async def test_permanent_failure_does_not_fall_back_by_default(
    make_pipeline: PipelineFactory, twilio: StubServer, code: int
) -> None:
    twilio.respond(400, twilio_error(code, 400))
    report, outbox = await deliver(make_pipeline, twilio.url)

    assert report.status == "failed"
    assert report.reason == "provider_failed"
    assert report.attempts[0].error_code == str(code)
    assert report.attempts[0].retryable is False
    assert outbox == []


async def test_permanent_failure_falls_back_when_the_tenant_says_always(
    make_pipeline: PipelineFactory, twilio: StubServer
) -> None:
    twilio.respond(400, twilio_error(21408, 400))
    report, outbox = await deliver(make_pipeline, twilio.url, fallback="always")
    assert report.path == ["twilio", "outbox"]
    assert report.status == "stored"
    assert len(outbox) == 1


async def test_authentication_failure_reports_the_twilio_code(
    make_pipeline: PipelineFactory, twilio: StubServer
) -> None:
    twilio.respond(401, twilio_error(20003, 401))
    report, _ = await deliver(make_pipeline, twilio.url, fallback="never")
    assert (report.status, report.attempts[0].error_code) == ("failed", "20003")
    assert "tw-secret-token" not in report.model_dump_json()


async def test_hand_off_then_timeout_never_sends_a_second_code(
    make_pipeline: PipelineFactory, twilio: StubServer
) -> None:
    twilio.hang()
    report, outbox = await deliver(
        make_pipeline, twilio.url, fallback="always", attempt_timeout=0.3
    )

    assert report.status == "failed"
    assert report.reason == "handed_off"
    [attempt] = report.attempts
    assert (attempt.error_code, attempt.handed_off) == ("timeout", True)
    assert len(twilio.requests) == 1
    assert outbox == []


async def test_malformed_success_answer_counts_as_handed_off(
    make_pipeline: PipelineFactory, twilio: StubServer
) -> None:
    twilio.respond(201, "{not json", {"Content-Type": "application/json"})
    report, outbox = await deliver(make_pipeline, twilio.url, fallback="always")
    assert report.attempts[0].error_code == "malformed_response"
    assert report.reason == "handed_off"
    assert outbox == []


async def test_voice_failure_cannot_fall_back_to_an_sms_only_sender(
    make_pipeline: PipelineFactory, twilio: StubServer
) -> None:
    twilio.respond(503, twilio_error(20503, 503))
    report, outbox = await deliver(make_pipeline, twilio.url, channel="voice")
    assert report.status == "failed"
    assert report.reason == "fallback_unavailable"
    assert "does not support voice" in (report.detail or "")
    assert outbox == []


async def test_voice_without_from_number_is_a_configuration_error(
    make_pipeline: PipelineFactory, twilio: StubServer
) -> None:
    report, _ = await deliver(
        make_pipeline,
        twilio.url,
        channel="voice",
        provider_settings={"from_number": None, "messaging_service_sid": "MG" + "2" * 32},
    )
    assert report.attempts[0].error_code == "configuration_error"
    assert "from_number" in (report.attempts[0].error or "")
    assert twilio.requests == []


async def test_fallback_into_a_full_outbox_is_a_clear_failure(
    make_pipeline: PipelineFactory, twilio: StubServer
) -> None:
    twilio.respond(503, twilio_error(20503, 503))
    report, _ = await deliver(make_pipeline, twilio.url, outbox_cap=0)
    assert report.status == "failed"
    assert report.reason == "fallback_failed"
    assert report.attempts[1].error_code == "outbox_cap_reached"
    assert "lifetime cap of 0 messages" in (report.detail or "")


async def test_delivered_by_twilio_records_the_sid(
    make_pipeline: PipelineFactory, twilio: StubServer, tmp_path: Path
) -> None:
    twilio.respond(201, {"sid": "SM" + "f" * 32, "status": "queued"})
    report, outbox = await deliver(make_pipeline, twilio.url)
    assert (report.status, report.delivered_by) == ("delivered", "twilio")
    assert report.attempts[0].message_id == "SM" + "f" * 32
    assert outbox == []
    [event] = read_log_file(tmp_path)
    assert event["type"] == "gd_send_sms"
    assert event["details"]["message_id"] == "SM" + "f" * 32
    assert "735194" not in (tmp_path / "data" / "events.jsonl").read_text()
