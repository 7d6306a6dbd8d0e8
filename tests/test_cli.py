"""The command line as a user runs it: real settings from the environment, real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from tests.support.events import EVENTS_DIR, event_files

TENANTS = """
[tenants.acme]
friendly_name = "Acme"
message_types = ["sms"]
provider = "outbox"

[tenants.globex]
message_types = ["sms"]
provider = "outbox"
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(TENANTS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tenants))
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def test_send_prints_the_report_and_stores_the_sms(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["send", "--tenant", "acme", "--to", "+14155552671", "--code", "123456"]
    )
    assert result.exit_code == 0, result.output
    assert "stored sms to +14155552671 by outbox not sent to a phone" in result.output

    listed = runner.invoke(app, ["outbox", "--tenant", "acme", "--json"])
    [message] = [json.loads(line) for line in listed.output.splitlines()]
    assert message["recipient"] == "+14155552671"
    assert message["text"] == "123456 is your verification code for Acme."


def test_send_json_report(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "send",
            "--tenant",
            "acme",
            "--to",
            "+447911123456",
            "--code",
            "4242",
            "--json",
            "--idempotency-key",
            "k1",
        ],
    )
    report = json.loads(result.output)
    assert (report["status"], report["path"], report["idempotency_key"]) == (
        "stored",
        ["outbox"],
        "k1",
    )
    assert "4242" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "+1555", "--code", "123456"], "recipient"),
        (["--to", "+14155552671", "--code", "12"], "code"),
        (["--to", "not a number", "--code", "123456"], "recipient"),
    ],
)
def test_send_bad_input_exits_2_naming_the_field(
    runner: CliRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["send", "--tenant", "acme", *args])
    assert result.exit_code == 2
    assert f"error: {message}:" in result.output
    assert "Traceback" not in result.output


def test_send_unknown_tenant_and_disabled_type_are_rejected_reports(runner: CliRunner) -> None:
    unknown = runner.invoke(
        app, ["send", "--tenant", "initech", "--to", "+14155552671", "--code", "123456", "--json"]
    )
    voice = runner.invoke(
        app,
        [
            "send",
            "--tenant",
            "acme",
            "--to",
            "+14155552671",
            "--code",
            "123456",
            "--channel",
            "voice",
            "--json",
        ],
    )
    assert (unknown.exit_code, json.loads(unknown.output)["reason"]) == (1, "unknown_tenant")
    assert (voice.exit_code, json.loads(voice.output)["reason"]) == (1, "message_type_disabled")


def test_missing_or_broken_tenants_file_is_a_clear_error(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tmp_path / "nope.toml"))
    missing = runner.invoke(
        app, ["send", "--tenant", "acme", "--to", "+14155552671", "--code", "123456"]
    )
    assert missing.exit_code == 2
    assert "nope.toml" in missing.output
    assert "not found" in missing.output

    broken = tmp_path / "broken.toml"
    broken.write_text('[tenants.acme]\nprovider = "outbox"\nmessage_types = sms\n')
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(broken))
    result = runner.invoke(
        app, ["send", "--tenant", "acme", "--to", "+14155552671", "--code", "123456"]
    )
    assert result.exit_code == 2
    assert "broken.toml" in result.output
    assert "line 3" in result.output


def test_replay_every_recorded_event(runner: CliRunner, tmp_path: Path) -> None:
    files = [str(p) for p in event_files() if "voice" not in p.name]
    result = runner.invoke(app, ["replay", *files, "--json"])
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["event"] for r in rows] == [Path(f).name for f in files]
    assert {r["report"]["status"] for r in rows} == {"stored"}
    assert result.exit_code == 0
    for row in rows:
        event = json.loads((EVENTS_DIR / row["event"]).read_text())
        tenant = event["tenant"]["id"]
        assert row["report"]["tenant"] == tenant


def test_replay_reports_bad_files_and_goes_on(runner: CliRunner, tmp_path: Path) -> None:
    good = EVENTS_DIR / next(p.name for p in event_files() if "voice" not in p.name)
    bad = tmp_path / "bad.json"
    bad.write_text('{"message_options": {"action": ')
    missing = tmp_path / "missing.json"
    result = runner.invoke(app, ["replay", str(bad), str(good), str(missing), "--json"])
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 1
    assert "malformed JSON at line 1" in rows[0]["error"]
    assert rows[1]["report"]["status"] == "stored"
    assert "cannot read" in rows[2]["error"]


def test_replay_as_another_tenant_prints_a_table(runner: CliRunner, tmp_path: Path) -> None:
    files = [str(p) for p in event_files("spm_*.json") if "voice" not in p.name][:2]
    result = runner.invoke(app, ["replay", *files, "--tenant", "globex"])
    assert result.exit_code == 0, result.output
    assert result.output.count("│ stored ") == 2
    listed = runner.invoke(app, ["outbox", "--tenant", "globex", "--json"])
    assert len(listed.output.splitlines()) == 2


def test_schema_prints_every_event_schema(runner: CliRunner) -> None:
    documents = json.loads(runner.invoke(app, ["schema"]).output)
    assert set(documents) == {"send-phone-message", "custom-phone-provider", "request", "report"}
    spm = documents["send-phone-message"]
    assert "message_options" in spm["required"]
    one = json.loads(runner.invoke(app, ["schema", "custom-phone-provider"]).output)
    assert "notification" in one["properties"]
    unknown = runner.invoke(app, ["schema", "email"])
    assert unknown.exit_code == 2
    assert "unknown schema" in unknown.output


def test_plugins_lists_builtins_with_hooks_and_providers(runner: CliRunner) -> None:
    rows = json.loads(runner.invoke(app, ["plugins", "--json"]).output)
    by_name = {row["name"]: row for row in rows}
    assert by_name["plugins.outbox"]["providers"] == ["outbox"]
    assert by_name["plugins.outbox"]["hooks"] == ["register_commands", "register_providers"]
    assert by_name["plugins.recorder"]["hooks"] == ["around_attempt"]
    assert "twilio" in by_name["plugins.twilio"]["providers"]


def test_make_run_sample_config_is_valid(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = Path(__file__).resolve().parents[1] / "docs" / "examples" / "tenants.toml"
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(sample))
    result = runner.invoke(
        app, ["send", "--tenant", "demo", "--to", "+14155552671", "--code", "123456", "--json"]
    )
    assert json.loads(result.output)["status"] == "stored"
