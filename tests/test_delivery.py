"""The pipeline's promises: policy, rendering, time budget, fallback rules, reports, records."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from runtime import ConfigurationError, PhoneMessageRequest, ProviderError, hookimpl
from runtime.tenants import TomlTenantDirectory
from tests.conftest import PipelineFactory, read_log
from tests.fake_providers import ProvidersPlugin, ScriptedProvider

NUMBER = "+14155552671"


def request(**fields: Any) -> PhoneMessageRequest:
    values: dict[str, Any] = {"tenant": "acme", "recipient": NUMBER, "code": "123456"}
    values.update(fields)
    return PhoneMessageRequest.create(**values)


def tenant(provider: str = "primary", **fields: Any) -> dict[str, dict[str, Any]]:
    table: dict[str, Any] = {
        "friendly_name": "Acme",
        "message_types": ["sms", "voice"],
        "provider": provider,
    }
    table.update(fields)
    return {"acme": table}


def fail(code: str, *, retryable: bool, handed_off: bool) -> Any:
    def behaviour(_message: Any) -> None:
        raise ProviderError(
            code, f"{code} from the provider", retryable=retryable, handed_off=handed_off
        )

    return behaviour


async def test_outbox_default_sender_stores_the_rendered_sms(
    make_pipeline: PipelineFactory, tmp_path: Path
) -> None:
    pipeline = make_pipeline(tenant("outbox"))
    report = await pipeline.deliver(request(recipient="+1 (415) 555-2671"))

    assert report.status == "stored"
    assert report.delivered_by == "outbox"
    assert report.path == ["outbox"]
    assert report.recipient == NUMBER
    outbox = pipeline.providers.get("outbox")
    [stored] = outbox.messages("acme")  # type: ignore[attr-defined]
    assert stored.recipient == NUMBER
    assert stored.text == "123456 is your verification code for Acme."
    assert [e["type"] for e in read_log(pipeline)] == ["gd_send_sms"]


async def test_disabled_message_type_is_rejected_with_a_log_event(
    make_pipeline: PipelineFactory, tmp_path: Path
) -> None:
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(message_types=["sms"]), plugins=(ProvidersPlugin(primary),))
    report = await pipeline.deliver(request(channel="voice"))

    assert report.status == "rejected"
    assert report.reason == "message_type_disabled"
    assert "'voice' is not enabled for tenant 'acme'" in (report.detail or "")
    assert primary.sent == []
    [event] = read_log(pipeline)
    assert event["type"] == "gd_send_voice_failure"
    assert event["details"]["failure_details"]["errorCode"] == "message_type_disabled"


async def test_unknown_tenant_is_a_rejected_report(make_pipeline: PipelineFactory) -> None:
    report = await make_pipeline(tenant("outbox")).deliver(request(tenant="globex"))
    assert (report.status, report.reason) == ("rejected", "unknown_tenant")
    assert "globex" in (report.detail or "")


async def test_unknown_provider_fails_without_fallback_unless_always(
    make_pipeline: PipelineFactory,
) -> None:
    report = await make_pipeline(tenant("nonexistent")).deliver(request())
    assert report.status == "failed"
    assert report.attempts[0].error_code == "unknown_provider"
    assert report.path == ["nonexistent"]

    report = await make_pipeline(tenant("nonexistent", fallback="always")).deliver(request())
    assert report.status == "stored"
    assert report.path == ["nonexistent", "outbox"]


async def test_voice_message_spells_the_code_digit_by_digit(
    make_pipeline: PipelineFactory,
) -> None:
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),))
    report = await pipeline.deliver(request(channel="voice", purpose="enrollment"))

    assert report.status == "delivered"
    [message] = primary.sent
    assert message.text == "Your enrollment code for Acme is 1. 2. 3. 4. 5. 6."
    assert message.timeout == pipeline.settings.attempt_timeout


async def test_tenant_liquid_template_branches_on_locale(make_pipeline: PipelineFactory) -> None:
    primary = ScriptedProvider("primary")
    template = (
        '{% if locale contains "fr" %}Votre code {{ tenant.friendly_name }} : {{ code }}'
        "{% else %}Code {{ code }}{% endif %}"
    )
    pipeline = make_pipeline(
        tenant(templates={"verification": template}), plugins=(ProvidersPlugin(primary),)
    )
    await pipeline.deliver(request(locale="fr-CA"))
    await pipeline.deliver(request(locale="en"))
    assert [m.text for m in primary.sent] == ["Votre code Acme : 123456", "Code 123456"]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("Code {% if code %}{{ code }}", "expected tag endif"),
        ("Your code is ready", "never prints {{ code }}"),
    ],
)
def test_broken_template_is_refused_when_the_tenants_load(source: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        TomlTenantDirectory.from_mapping({"tenants": tenant(templates={"verification": source})})
    assert "tenants.acme.templates" in str(info.value)
    assert problem in str(info.value)


async def test_template_failing_while_rendering_is_rejected(
    make_pipeline: PipelineFactory,
) -> None:
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(
        tenant(templates={"verification": "{{ code }} expires in {{ 10 | divided_by: 0 }}"}),
        plugins=(ProvidersPlugin(primary),),
    )
    report = await pipeline.deliver(request())
    assert (report.status, report.reason) == ("rejected", "template_error")
    assert "sms verification template" in (report.detail or "")
    assert "divided_by" in (report.detail or "")
    assert primary.sent == []


async def test_a_raising_before_send_plugin_fails_the_message_safely(
    make_pipeline: PipelineFactory,
) -> None:
    primary = ScriptedProvider("primary")

    class Buggy:
        @hookimpl
        def before_send(self, message: Any) -> str | None:
            raise KeyError("bug")

    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary), Buggy()))
    report = await pipeline.deliver(request(idempotency_key="k"))
    again = await pipeline.deliver(request(idempotency_key="k"))
    assert (report.status, report.reason) == ("failed", "plugin_error")
    assert "KeyError" in (report.detail or "")
    assert primary.sent == []
    assert again.replayed  # the key was completed, not left pending


async def test_default_sender_that_needs_settings_is_refused_at_start(
    make_pipeline: PipelineFactory,
) -> None:
    needy = ScriptedProvider("needy")
    needy.credentials_model = TokenCredentials
    with pytest.raises(ConfigurationError, match="PHONE_ACTIONS_DEFAULT_SENDER_CREDENTIALS_ENV"):
        make_pipeline(tenant(), plugins=(ProvidersPlugin(needy),), default_sender="needy")


async def test_before_send_veto_stops_the_message(make_pipeline: PipelineFactory) -> None:
    primary = ScriptedProvider("primary")

    class BlockPremium:
        @hookimpl
        def before_send(self, message: Any) -> str | None:
            return "premium-rate destination" if message.recipient.startswith("+1900") else None

    # the tenant lets premium-rate numbers through (runtime/policy), so the plugin decides
    allow_all: dict[str, list[str]] = {"blocked_number_types": []}
    pipeline = make_pipeline(
        tenant(phone_limits=allow_all), plugins=(ProvidersPlugin(primary), BlockPremium())
    )
    vetoed = await pipeline.deliver(request(recipient="+19005550123"))
    allowed = await pipeline.deliver(request())

    assert (vetoed.status, vetoed.reason, vetoed.detail) == (
        "rejected",
        "vetoed",
        "premium-rate destination",
    )
    assert allowed.status == "delivered"
    assert [m.recipient for m in primary.sent] == [NUMBER]


async def test_after_send_observers_see_every_report_and_one_crash_hides_nothing(
    make_pipeline: PipelineFactory,
) -> None:
    seen: list[str] = []

    class Broken:
        @hookimpl
        def after_send(self, report: Any) -> None:
            raise RuntimeError("observer bug")

    class Recorder:
        @hookimpl
        def after_send(self, request: Any, report: Any) -> None:
            seen.append(f"{request.tenant}:{report.status}")

    pipeline = make_pipeline(tenant("outbox"), plugins=(Recorder(), Broken()))
    report = await pipeline.deliver(request())
    await pipeline.deliver(request(tenant="nobody"))
    assert report.status == "stored"
    assert seen == ["acme:stored", "nobody:rejected"]


async def test_retryable_failure_not_handed_off_falls_back(
    make_pipeline: PipelineFactory, tmp_path: Path
) -> None:
    primary = ScriptedProvider("primary", fail("503", retryable=True, handed_off=False))
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),))
    report = await pipeline.deliver(request())

    assert report.status == "stored"
    assert report.delivered_by == "outbox"
    assert report.path == ["primary", "outbox"]
    assert [a.fallback for a in report.attempts] == [False, True]
    assert [e["type"] for e in read_log(pipeline)] == ["gd_send_sms_failure", "gd_send_sms"]


@pytest.mark.parametrize(
    ("policy", "retryable", "falls_back"),
    [
        ("retryable", False, False),
        ("always", False, True),
        ("never", True, False),
        ("retryable", True, True),
    ],
)
async def test_fallback_policy(
    make_pipeline: PipelineFactory, policy: str, retryable: bool, falls_back: bool
) -> None:
    primary = ScriptedProvider("primary", fail("21211", retryable=retryable, handed_off=False))
    pipeline = make_pipeline(tenant(fallback=policy), plugins=(ProvidersPlugin(primary),))
    report = await pipeline.deliver(request())
    assert report.status == ("stored" if falls_back else "failed")
    assert report.path == (["primary", "outbox"] if falls_back else ["primary"])


async def test_handed_off_failure_never_falls_back(make_pipeline: PipelineFactory) -> None:
    primary = ScriptedProvider("primary", fail("timeout", retryable=True, handed_off=True))
    pipeline = make_pipeline(tenant(fallback="always"), plugins=(ProvidersPlugin(primary),))
    report = await pipeline.deliver(request())
    assert report.status == "failed"
    assert report.reason == "handed_off"
    assert report.path == ["primary"]
    assert "never receive two codes" in (report.detail or "")


async def test_time_budget_abandons_a_hung_provider_without_fallback(
    make_pipeline: PipelineFactory, never_set: asyncio.Event
) -> None:
    primary = ScriptedProvider("primary", lambda _m: never_set.wait())
    pipeline = make_pipeline(
        tenant(fallback="always"), plugins=(ProvidersPlugin(primary),), attempt_timeout=0.2
    )
    report = await pipeline.deliver(request())
    [attempt] = report.attempts
    assert (attempt.error_code, attempt.handed_off) == ("timeout", True)
    # The provider never answers: any end shows the 0.2 s budget. Generous for a loaded machine.
    assert 200 <= attempt.latency_ms < 5000
    assert report.reason == "handed_off"


async def test_crashing_provider_is_a_failure_that_may_have_sent(
    make_pipeline: PipelineFactory,
) -> None:
    def crash(_m: Any) -> None:
        raise RuntimeError("plugin bug")

    pipeline = make_pipeline(
        tenant(fallback="always"), plugins=(ProvidersPlugin(ScriptedProvider("primary", crash)),)
    )
    report = await pipeline.deliver(request())
    assert report.attempts[0].error_code == "provider_crashed"
    assert report.path == ["primary"]


async def test_voice_fallback_needs_a_default_sender_with_voice(
    make_pipeline: PipelineFactory,
) -> None:
    primary = ScriptedProvider("primary", fail("503", retryable=True, handed_off=False))
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),))
    report = await pipeline.deliver(request(channel="voice"))
    assert report.status == "failed"
    assert report.reason == "fallback_unavailable"
    assert "'outbox' does not support voice" in (report.detail or "")


async def test_outbox_cap_is_a_clear_failure(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(tenant("outbox"), outbox_cap=2)
    statuses = [(await pipeline.deliver(request())).status for _ in range(2)]
    report = await pipeline.deliver(request())
    assert statuses == ["stored", "stored"]
    assert report.status == "failed"
    assert report.attempts[0].error_code == "outbox_cap_reached"
    assert "lifetime cap of 2 messages for tenant 'acme'" in (report.attempts[0].error or "")
    # the tenant's own provider is the default sender: said so, not a fallback rule
    assert (report.reason, len(report.attempts)) == ("provider_failed", 1)
    assert (report.detail or "").endswith("'outbox' is the default sender itself: no fallback")


async def test_cap_reached_after_fallback_is_a_clear_failure(
    make_pipeline: PipelineFactory,
) -> None:
    primary = ScriptedProvider("primary", fail("503", retryable=True, handed_off=False))
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),), outbox_cap=0)
    report = await pipeline.deliver(request())
    assert report.status == "failed"
    assert report.reason == "fallback_failed"
    assert report.attempts[1].error_code == "outbox_cap_reached"


class TokenCredentials(BaseModel):
    token: SecretStr


async def test_credentials_come_from_the_named_environment_variable(
    make_pipeline: PipelineFactory,
) -> None:
    primary = ScriptedProvider("primary")
    primary.credentials_model = TokenCredentials
    acme = tenant(credentials_env={"token": "ACME_TOKEN"})
    ok = await make_pipeline(
        acme, plugins=(ProvidersPlugin(primary),), environ={"ACME_TOKEN": "s3cret"}
    ).deliver(request())
    assert ok.status == "delivered"
    assert primary.credentials[0].token.get_secret_value() == "s3cret"

    missing = make_pipeline(acme, plugins=(ProvidersPlugin(ScriptedProvider("primary")),))
    report = await missing.deliver(request())
    assert report.attempts[0].error_code == "missing_credentials"
    assert "ACME_TOKEN" in (report.attempts[0].error or "")


async def test_code_and_credentials_never_reach_reports_or_logs(
    make_pipeline: PipelineFactory, tmp_path: Path
) -> None:
    def leaky(message: Any) -> None:
        raise ProviderError(
            "400",
            f"rejected body '{message.text}' for key s3cret-token",
            retryable=True,
            handed_off=False,
        )

    primary = ScriptedProvider("primary", leaky)
    primary.credentials_model = TokenCredentials
    pipeline = make_pipeline(
        tenant(credentials_env={"token": "ACME_TOKEN"}),
        plugins=(ProvidersPlugin(primary),),
        environ={"ACME_TOKEN": "s3cret-token"},
    )
    report = await pipeline.deliver(request(code="918273"))

    assert report.status == "stored"  # fell back to the outbox, which stores
    dumped = report.model_dump_json()
    events = read_log(pipeline)
    log_text = (tmp_path / "data" / "events.jsonl").read_text()
    assert [e["type"] for e in events] == ["gd_send_sms_failure", "gd_send_sms"]
    for secret in ("918273", "s3cret-token", "9. 1. 8. 2. 7. 3"):
        assert secret not in dumped
        assert secret not in log_text
    assert "******" in (report.attempts[0].error or "")


async def test_one_delivery_id_links_report_provider_and_log_events(
    make_pipeline: PipelineFactory,
) -> None:
    """The id a provider gets as its client reference is the report's id and every log event's
    delivery_id; each event has its own log_id, and its date is when the report was made."""
    primary = ScriptedProvider("primary", fail("503", retryable=True, handed_off=False))
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),))
    report = await pipeline.deliver(request())
    second = await pipeline.deliver(request())

    outbox = pipeline.providers.get("outbox")
    assert [m.id for m in primary.sent] == [report.id, second.id]
    assert report.id != second.id
    events = read_log(pipeline)
    assert [e["details"]["delivery_id"] for e in events] == [report.id] * 2 + [second.id] * 2
    log_ids = [e["log_id"] for e in events]
    assert len(set(log_ids)) == 4
    assert all(len(log_id) == 32 for log_id in log_ids)
    assert all(log_id.startswith(report.id[:30]) for log_id in log_ids[:2])
    assert events[0]["date"] == report.created_at.isoformat().replace("+00:00", "Z")
    assert [s.recipient for s in outbox.messages("acme")] == [NUMBER, NUMBER]  # type: ignore[attr-defined]


async def test_a_rejected_request_still_gets_its_own_ids(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(tenant("outbox"))
    first = await pipeline.deliver(request(tenant="nobody"))
    again = await pipeline.deliver(request(tenant="nobody"))
    assert first.status == again.status == "rejected"
    assert first.id != again.id
    assert [e["details"]["delivery_id"] for e in read_log(pipeline)] == [first.id, again.id]


def test_the_shared_empty_request_context_cannot_be_changed() -> None:
    """Requests without a request context share one empty instance: it must be immutable."""
    one, two = request(), request()
    with pytest.raises(ValidationError):
        one.request.ip = "203.0.113.7"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        one.request.geoip.countryCode = "US"  # type: ignore[misc]
    assert two.request.ip is None
    assert two.request.geoip.countryCode is None
    given = request(request={"ip": "203.0.113.7", "geoip": {"countryCode": "FR"}})
    assert (given.request.ip, given.request.geoip.countryCode) == ("203.0.113.7", "FR")
