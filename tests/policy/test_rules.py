"""Every rate-limit rule through the real pipeline, on a controllable clock (time-machine moves
``time.time``, which the ``limits`` windows read): Auth0's per-user limits, then the per-IP,
per-recipient, per-country and per-tenant ones; a refusal reaches no provider, counts against
no limit, takes nothing of the outbox's cap and is logged as limit_phone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine

from runtime import PhoneMessageRequest
from runtime.events import DeliveryReport
from tests.conftest import PipelineFactory, read_log
from tests.fake_providers import ProvidersPlugin, ScriptedProvider

NUMBER = "+14155552671"
OTHER = "+14155552672"
HOUR = 3600.0


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(1_800_000_000.0, tick=False) as traveller:
        yield traveller


def tenant(**limits: Any) -> dict[str, dict[str, Any]]:
    table: dict[str, Any] = {"message_types": ["sms", "voice"], "provider": "primary"}
    if limits:
        table["phone_limits"] = limits
    return {"acme": table}


def request(user: str | None = "auth0|alice", **fields: Any) -> PhoneMessageRequest:
    values: dict[str, Any] = {"tenant": "acme", "recipient": NUMBER, "code": "123456"}
    if user is not None:
        values["user"] = {"user_id": user}
    values.update(fields)
    return PhoneMessageRequest.create(**values)


def sent(report: DeliveryReport) -> bool:
    return report.status == "delivered"


async def test_the_11th_sms_in_an_hour_is_refused_and_the_window_moves(
    make_pipeline: PipelineFactory, clock: time_machine.Traveller
) -> None:
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),))
    reports = []
    for number in range(10):  # 5 per 5 minutes: two requests a minute stay under it
        reports.append(await pipeline.deliver(request()))
        clock.shift(5 * 60 / 2 + 1 if number % 2 else 1)
    assert all(map(sent, reports)), [r.reason for r in reports]
    eleventh = await pipeline.deliver(request())
    assert (eleventh.status, eleventh.reason, eleventh.limit) == (
        "rejected",
        "rate_limited",
        "user_messages",
    )
    assert "10 per hour" in (eleventh.detail or "")
    first_ages_out = HOUR - (time.time() - 1_800_000_000.0)
    assert eleventh.retry_after == pytest.approx(first_ages_out, abs=1)
    assert len(primary.sent) == 10  # the refused one reached no provider
    clock.shift(first_ages_out + 0.5)  # the first message of the hour leaves the window
    assert sent(await pipeline.deliver(request()))
    assert not sent(await pipeline.deliver(request()))  # one more per message that ages out


async def test_the_second_voice_call_in_an_hour_is_refused_but_sms_still_goes(
    make_pipeline: PipelineFactory, clock: time_machine.Traveller
) -> None:
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),))
    assert sent(await pipeline.deliver(request(channel="voice")))
    second = await pipeline.deliver(request(channel="voice"))
    assert (second.reason, second.limit) == ("rate_limited", "user_voice")
    assert second.retry_after == HOUR
    assert sent(await pipeline.deliver(request(channel="sms")))  # refused counted nowhere
    clock.shift(HOUR)
    assert sent(await pipeline.deliver(request(channel="voice")))
    assert [m.channel for m in primary.sent] == ["voice", "sms", "voice"]


async def test_the_6th_code_request_in_5_minutes_is_refused(
    make_pipeline: PipelineFactory, clock: time_machine.Traveller
) -> None:
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(ScriptedProvider("primary")),))
    for _ in range(5):
        assert sent(await pipeline.deliver(request()))
        clock.shift(10)
    sixth = await pipeline.deliver(request())
    assert (sixth.reason, sixth.limit) == ("rate_limited", "user_requests")
    assert sixth.retry_after == 5 * 60 - 50
    other_user = await pipeline.deliver(request(user="auth0|bob"))
    assert sent(other_user)  # the limit is the user's, not the number's
    clock.shift(5 * 60 - 50)
    assert sent(await pipeline.deliver(request()))


async def test_per_ip_recipient_country_and_tenant_limits(
    make_pipeline: PipelineFactory, clock: time_machine.Traveller
) -> None:
    limits = {"ip": "2/minute", "recipient": "3/hour", "user_requests": None}
    pipeline = make_pipeline(
        {
            **tenant(**limits),
            "capped": {
                "provider": "primary",
                "phone_limits": {"country_hourly_caps": {"US": 2}, "tenant": "3/hour"},
            },
        },
        plugins=(ProvidersPlugin(ScriptedProvider("primary")),),
    )

    def from_ip(ip: str, user: str) -> PhoneMessageRequest:
        return request(user=user, request={"ip": ip})

    assert sent(await pipeline.deliver(from_ip("203.0.113.7", "u1")))
    assert sent(await pipeline.deliver(from_ip("203.0.113.7", "u2")))
    by_ip = await pipeline.deliver(from_ip("203.0.113.7", "u3"))
    assert (by_ip.reason, by_ip.limit, by_ip.retry_after) == ("rate_limited", "ip", 60)
    assert sent(await pipeline.deliver(from_ip("203.0.113.8", "u4")))  # the IP's refusal
    by_number = await pipeline.deliver(from_ip("203.0.113.9", "u5"))  # counted nowhere
    assert (by_number.reason, by_number.limit) == ("rate_limited", "recipient")
    assert sent(
        await pipeline.deliver(from_ip("203.0.113.8", "u4").model_copy(update={"recipient": OTHER}))
    )

    def capped(number: str, user: str) -> PhoneMessageRequest:
        return request(user=user, tenant="capped", recipient=number)

    assert sent(await pipeline.deliver(capped(NUMBER, "a")))
    assert sent(await pipeline.deliver(capped(OTHER, "b")))
    us = await pipeline.deliver(capped("+12025550143", "c"))
    assert (us.reason, us.limit) == ("rate_limited", "country")
    assert sent(await pipeline.deliver(capped("+447400123456", "d")))  # GB is not capped
    whole = await pipeline.deliver(capped("+447400123457", "e"))
    assert (whole.reason, whole.limit) == ("rate_limited", "tenant")


async def test_a_refusal_is_logged_as_limit_phone_and_takes_nothing_of_the_outbox(
    make_pipeline: PipelineFactory, clock: time_machine.Traveller
) -> None:
    outboxed = make_pipeline({"acme": {"phone_limits": {"user_messages": "1/hour"}}}, outbox_cap=2)
    first = await outboxed.deliver(request())
    assert first.status == "stored", first.attempts
    refused = await outboxed.deliver(request())
    assert (refused.reason, refused.attempts) == ("rate_limited", [])
    clock.shift(HOUR)
    assert (await outboxed.deliver(request())).status == "stored"  # the cap of 2 is not spent
    events = read_log(outboxed)
    kinds = [e["type"] for e in events]
    assert kinds == ["gd_send_sms", "limit_phone", "gd_otp_rate_limit_exceed", "gd_send_sms"]
    limited = events[1]
    details = limited["details"]
    assert details["type"] == "user_messages"
    assert details["delivery_method"] == "sms"
    assert details["failure_details"]["errorCode"] == "rate_limited"
    assert details["trigger_time"] < details["reset_time"]
    assert limited["user_id"] == "auth0|alice"
    assert limited["description"] == "Blocked Phone Delivery"
    assert events[2]["log_id"] != limited["log_id"]
    assert "123456" not in str(events)
