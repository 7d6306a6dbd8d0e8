"""The default sender is operator configuration: any provider, with the platform's own settings
and credentials, and a lifetime cap per tenant that the pipeline enforces for whichever provider
it is. The outbox, the embedded default, stores messages and says so: "stored", never
"delivered"."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr
from typer.testing import CliRunner

from runtime import ConfigurationError, ProviderError
from runtime.cli import app
from runtime.delivery import Pipeline
from runtime.tenants import TomlTenantDirectory
from tests.conftest import PipelineFactory, make_settings, read_log
from tests.fake_providers import ProvidersPlugin, ScriptedProvider
from tests.store.faults import sqlite_write_lock
from tests.test_delivery import fail, request, tenant


class PlatformSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sender_id: str


class PlatformCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api_key: SecretStr


class PlatformProvider(ScriptedProvider):
    """Stands for the platform's own account at a real provider (Twilio, Vonage, ...)."""

    config_model = PlatformSettings
    credentials_model = PlatformCredentials


PLATFORM = {
    "default_sender": "platform",
    "default_sender_settings": {"sender_id": "PLATFORM"},
    "default_sender_credentials_env": {"api_key": "PLATFORM_API_KEY"},
}
ENV = {"PLATFORM_API_KEY": "platform-secret"}


@pytest.fixture(autouse=True)
def platform_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORM_API_KEY", "platform-secret")


async def test_a_tenant_without_a_provider_uses_the_platforms_default_sender(
    make_pipeline: PipelineFactory,
) -> None:
    platform = PlatformProvider("platform")
    pipeline = make_pipeline(
        tenant("default"), plugins=(ProvidersPlugin(platform),), environ=ENV, **PLATFORM
    )
    report = await pipeline.deliver(request())
    assert (report.status, report.delivered_by) == ("delivered", "platform")
    assert platform.credentials[0].api_key.get_secret_value() == "platform-secret"


async def test_a_fallback_goes_to_the_configured_default_sender(
    make_pipeline: PipelineFactory,
) -> None:
    platform = PlatformProvider("platform")
    primary = ScriptedProvider("primary", fail("503", retryable=True, handed_off=False))
    pipeline = make_pipeline(
        tenant(), plugins=(ProvidersPlugin(primary, platform),), environ=ENV, **PLATFORM
    )
    report = await pipeline.deliver(request())
    assert report.status == "delivered"
    assert report.path == ["primary", "platform"]
    assert "platform-secret" not in report.model_dump_json()


async def test_the_lifetime_cap_is_enforced_for_whichever_provider_it_is(
    make_pipeline: PipelineFactory,
) -> None:
    platform = PlatformProvider("platform")
    pipeline = make_pipeline(
        tenant("default"),
        plugins=(ProvidersPlugin(platform),),
        environ=ENV,
        default_sender_cap=3,
        **PLATFORM,
    )
    reports = [await pipeline.deliver(request()) for _ in range(5)]
    assert [r.status for r in reports] == ["delivered"] * 3 + ["failed"] * 2
    assert reports[-1].attempts[0].error_code == "default_sender_cap_reached"
    assert not reports[-1].attempts[0].handed_off
    assert len(platform.sent) == 3


async def test_a_failure_that_sent_nothing_gives_the_allowance_back(
    make_pipeline: PipelineFactory,
) -> None:
    outcomes = iter([fail("throttled", retryable=True, handed_off=False), None, None])

    def behaviour(message: Any) -> Any:
        step = next(outcomes)
        return step(message) if step else None

    platform = PlatformProvider("platform", behaviour)
    pipeline = make_pipeline(
        tenant("default"),
        plugins=(ProvidersPlugin(platform),),
        environ=ENV,
        default_sender_cap=2,
        **PLATFORM,
    )
    statuses = [(await pipeline.deliver(request())).status for _ in range(3)]
    assert statuses == ["failed", "delivered", "delivered"]


async def test_a_failure_that_may_have_sent_counts(make_pipeline: PipelineFactory) -> None:
    platform = PlatformProvider("platform", fail("timeout", retryable=True, handed_off=True))
    pipeline = make_pipeline(
        tenant("default"),
        plugins=(ProvidersPlugin(platform),),
        environ=ENV,
        default_sender_cap=1,
        **PLATFORM,
    )
    first, second = [await pipeline.deliver(request()) for _ in range(2)]
    assert first.reason == "handed_off"
    assert second.attempts[0].error_code == "default_sender_cap_reached"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"default_sender": "nobody"}, "PHONE_ACTIONS_DEFAULT_SENDER:"),
        ({"default_sender_settings": {}}, "PHONE_ACTIONS_DEFAULT_SENDER_SETTINGS: sender_id"),
        (
            {"default_sender_credentials_env": {"api_key": "UNSET_VARIABLE"}},
            "UNSET_VARIABLE",
        ),
    ],
)
def test_a_bad_default_sender_is_refused_at_start_naming_the_setting(
    make_pipeline: PipelineFactory, overrides: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        make_pipeline(
            tenant(),
            plugins=(ProvidersPlugin(PlatformProvider("platform")),),
            **{**PLATFORM, **overrides},
        )


async def test_the_outbox_reports_stored_not_delivered(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(tenant("default"))  # the embedded default: the outbox
    report = await pipeline.deliver(request())
    assert (report.status, report.delivered_by) == ("stored", "outbox")
    assert report.reason == "not_sent_to_a_phone"
    [event] = read_log(pipeline)
    assert event["details"]["status"] == "stored"
    assert "not sent to a phone" in event["description"]


def test_the_cli_says_stored_and_not_sent(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text('[tenants.demo]\nprovider = "outbox"\n')
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tenants))
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(
        app, ["send", "--tenant", "demo", "--to", "+14155552671", "--code", "123456"]
    )
    assert result.exit_code == 0, result.output
    assert "stored" in result.output
    assert "not sent to a phone" in result.output


def test_doctor_warns_while_the_outbox_is_the_default_sender(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text('[tenants.demo]\nprovider = "outbox"\n')
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tenants))
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["doctor", "--json"])
    rows = [__import__("json").loads(line) for line in result.output.splitlines()]
    [row] = [r for r in rows if r["check"] == "default sender"]
    assert row["status"] != "ok"
    assert "sends none to phones" in row["detail"]


async def test_a_reservation_that_counted_after_its_deadline_is_given_back(
    make_pipeline: PipelineFactory,
) -> None:
    """The database answered the reservation only after the delivery had given up on it
    (nothing was sent): that late count is refunded, so it never eats the tenant's cap."""
    platform = PlatformProvider("platform")
    pipeline = make_pipeline(
        tenant("default"),
        plugins=(ProvidersPlugin(platform),),
        environ=ENV,
        default_sender_cap=1,
        store_timeout=0.2,
        **PLATFORM,
    )
    assert pipeline.idempotency is not None  # opens the store
    usage = pipeline._usage
    assert usage is not None
    real_reserve, real_refund = usage.reserve, usage.refund
    release, refunded = threading.Event(), threading.Event()

    def slow_reserve(tenant_id: str, cap: int) -> bool:  # the real one, answering late
        release.wait(10)
        return real_reserve(tenant_id, cap)

    def observed_refund(tenant_id: str) -> None:
        real_refund(tenant_id)
        refunded.set()

    usage.reserve = slow_reserve  # type: ignore[method-assign, assignment]
    usage.refund = observed_refund  # type: ignore[method-assign, assignment]
    timed_out = await pipeline.deliver(request())
    assert timed_out.attempts[0].error_code == "store_unavailable"
    assert not platform.sent
    usage.reserve = real_reserve  # type: ignore[method-assign]
    release.set()  # the late reservation counts now ...
    assert await asyncio.to_thread(refunded.wait, 10)  # ... and is given back
    assert usage.used("acme") == 0
    again = await pipeline.deliver(request())
    assert (again.status, len(platform.sent)) == ("delivered", 1)


def test_a_reservation_whose_event_loop_closed_meanwhile_is_given_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop was torn down (``asyncio.run`` returned, cancelling the delivery) while the
    default sender's reservation ran on the store thread: nothing was sent, and the count
    the thread makes afterwards is refunded there, with no loop left to hand it to."""
    pipeline = Pipeline.from_settings(
        make_settings(tmp_path, default_sender_cap=1, **PLATFORM),
        tenants=TomlTenantDirectory.from_mapping({"tenants": tenant("default")}, environ=ENV),
        plugins=(ProvidersPlugin(platform := PlatformProvider("platform")),),
        load_entrypoints=False,
    )
    assert pipeline.idempotency is not None  # opens the store
    usage = pipeline._usage
    assert usage is not None
    real_reserve, real_refund = usage.reserve, usage.refund
    reserving, release, refunded = threading.Event(), threading.Event(), threading.Event()

    def held_reserve(tenant_id: str, cap: int) -> bool:  # the real one, answering late
        reserving.set()
        release.wait(10)
        return real_reserve(tenant_id, cap)

    def observed_refund(tenant_id: str) -> None:
        real_refund(tenant_id)
        refunded.set()

    monkeypatch.setattr(usage, "reserve", held_reserve)
    monkeypatch.setattr(usage, "refund", observed_refund)

    async def leave_mid_reservation() -> None:
        asyncio.get_running_loop().create_task(pipeline.deliver(request()))
        await asyncio.to_thread(reserving.wait, 10)  # returning tears the loop down

    asyncio.run(leave_mid_reservation())
    release.set()  # the reservation counts now, its loop long closed ...
    assert refunded.wait(10)  # ... and is given back on the store thread
    assert (usage.used("acme"), platform.sent) == (0, [])
    asyncio.run(pipeline.aclose())


async def test_a_refund_the_database_did_not_take_is_given_back_later(
    make_pipeline: PipelineFactory,
) -> None:
    """The default sender refused (nothing sent) while another connection held SQLite's write
    lock past the store timeout: the refund fails then, and is tried again, not lost."""
    lock = contextlib.ExitStack()

    def refuse_while_the_database_is_locked(_message: Any) -> None:
        lock.enter_context(sqlite_write_lock(database))
        raise ProviderError("21211", "invalid number", retryable=False, handed_off=False)

    platform = PlatformProvider("platform", refuse_while_the_database_is_locked)
    pipeline = make_pipeline(
        tenant("default"),
        plugins=(ProvidersPlugin(platform),),
        environ=ENV,
        store_timeout=0.3,
        **PLATFORM,
    )
    database = pipeline.settings.data_dir / "phone-actions.sqlite3"

    def used() -> int:  # read beside the pipeline's own connection (WAL: no lock needed)
        with contextlib.closing(sqlite3.connect(database)) as db:
            row = db.execute("SELECT used FROM default_sender_usage WHERE tenant = 'acme'")
            return int(next(iter(row.fetchall()), (0,))[0])

    await pipeline.open_store()
    refused = await pipeline.deliver(request())
    assert (refused.status, len(platform.sent)) == ("failed", 1)  # refused: nothing sent
    assert used() == 1  # the refund met the lock: still counted, and owed
    lock.close()  # the database answers again
    await pipeline.aclose()  # closing tries what is still owed at once
    assert used() == 0


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"PHONE_ACTIONS_DEFAULT_SENDER": "vonage"},
            "error: PHONE_ACTIONS_DEFAULT_SENDER_SETTINGS: set sender (SMS) or from_number (a "
            "Vonage number in E.164; voice needs it) (provider 'vonage')",
        ),
        (
            {
                "PHONE_ACTIONS_DEFAULT_SENDER": "twilio",
                "PHONE_ACTIONS_DEFAULT_SENDER_SETTINGS": '{"from_number": "+15017122661"}',
                "PHONE_ACTIONS_DEFAULT_SENDER_CREDENTIALS_ENV": (
                    '{"acount_sid": "SID_VARIABLE", "auth_token": "TOKEN_VARIABLE"}'
                ),
                "SID_VARIABLE": "AC" + "0" * 32,
                "TOKEN_VARIABLE": "t" * 32,
            },
            "error: PHONE_ACTIONS_DEFAULT_SENDER_CREDENTIALS_ENV: account_sid: missing (it is "
            "required); acount_sid: not a known credential (check the spelling) "
            "(provider 'twilio')",
        ),
    ],
)
def test_the_default_senders_errors_name_fields_in_the_users_words(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    """No pydantic ``(all)`` for a rule on the whole settings; a credential is no setting."""
    tenants = tmp_path / "tenants.toml"
    tenants.write_text('[tenants.demo]\nprovider = "default"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tenants))
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(
        app, ["send", "--tenant", "demo", "--to", "+14155552671", "--code", "123456"], env=env
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == expected


def test_doctor_says_a_cap_of_one_message(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tmp_path / "none.toml"))
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    env = {
        "PHONE_ACTIONS_DEFAULT_SENDER": "mitto",
        "PHONE_ACTIONS_DEFAULT_SENDER_SETTINGS": '{"sender": "Acme"}',
        "PHONE_ACTIONS_DEFAULT_SENDER_CREDENTIALS_ENV": '{"api_key": "MITTO_KEY_VARIABLE"}',
        "MITTO_KEY_VARIABLE": "mitto-key-1234",
        "PHONE_ACTIONS_DEFAULT_SENDER_CAP": "1",
    }
    result = CliRunner().invoke(app, ["doctor", "--json"], env=env)
    rows = [__import__("json").loads(line) for line in result.stdout.splitlines()]
    [row] = [r for r in rows if r["check"] == "default sender"]
    assert (row["status"], row["detail"]) == ("ok", "mitto, cap 1 message per tenant")
