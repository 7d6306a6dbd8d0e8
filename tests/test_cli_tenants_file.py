"""Where a tenants file's path came from is what its error names: ``tenants import FILE``'s
argument (``FILE``), or the setting PHONE_ACTIONS_TENANTS_FILE for the commands that read the
setting. One ``error:`` line, exit 2, and nothing written when the argument is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from tests.test_cli_errors import error_line

SEND = ["send", "--tenant", "acme", "--to", "+14155552671", "--code", "123456", "--json"]


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tmp_path / "unused-tenants.toml"))
    for name in ("DATABASE_URL", "LOG_FILE"):
        monkeypatch.delenv(f"PHONE_ACTIONS_{name}", raising=False)
    return CliRunner()


def test_import_of_a_missing_file_names_the_argument(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent.toml"
    line = error_line(runner.invoke(app, ["tenants", "import", str(missing)]))
    assert line == f"error: FILE '{missing}': not found"
    assert not (tmp_path / "data").exists()  # refused before the database was opened


def test_import_of_a_folder_names_the_argument(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    line = error_line(runner.invoke(app, ["tenants", "import", str(folder)]))
    assert line == f"error: FILE '{folder}': cannot read: Is a directory"
    assert "PHONE_ACTIONS_TENANTS_FILE" not in line


def test_the_setting_keeps_its_name(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nonexistent.toml"
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(missing))
    line = error_line(runner.invoke(app, SEND))
    assert line == f"error: tenants file '{missing}' not found (set PHONE_ACTIONS_TENANTS_FILE)"
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tmp_path))
    line = error_line(runner.invoke(app, SEND))
    assert line == f"error: PHONE_ACTIONS_TENANTS_FILE: cannot read '{tmp_path}': Is a directory"


MISSPELT = '[tenants.acme]\nprovider = "twillio"\n\n[tenants.globex]\nprovider = "outbox"\n'
REGISTERED = (
    "clickatell, clicksend, custom, esendex, infobip, messagebird, mitto, outbox, "
    "phone-message-hook, plivo, sinch, sns, telesign, twilio, vonage"
)


def test_import_refuses_a_provider_no_plugin_registers(runner: CliRunner, tmp_path: Path) -> None:
    """A misspelt provider used to be imported, and to fail only at the first delivery."""
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(MISSPELT)
    line = error_line(runner.invoke(app, ["tenants", "import", str(tenants)]))
    assert line == (
        f"error: {tenants}: tenants.acme.provider: 'twillio' is not a registered provider "
        f"(did you mean 'twilio'?); registered: {REGISTERED}, or 'default' (the default sender)"
    )
    assert not (tmp_path / "data").exists()  # refused before the database was opened: no tenant


def test_send_refuses_a_tenant_whose_provider_no_plugin_registers(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tenants file used as it is (never imported): its misspelt provider is configuration,
    exit 2 with the field named, not a failed delivery; another tenant's typo stops nobody."""
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(MISSPELT)
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tenants))
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    to = ["--to", "+14155552671", "--code", "123456"]
    line = error_line(runner.invoke(app, ["send", "--tenant", "acme", *to]))
    assert line == (
        f"error: {tenants}: tenants.acme.provider: 'twillio' is not a registered provider "
        f"(did you mean 'twilio'?); registered: {REGISTERED}, or 'default' (the default sender)"
    )
    stored = runner.invoke(app, ["send", "--tenant", "globex", *to])
    assert stored.exit_code == 0, stored.output


def test_import_prints_a_header_over_every_column(runner: CliRunner, tmp_path: Path) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text('[tenants.acme]\nprovider = "outbox"\n\n[tenants.demo]\n')
    result = runner.invoke(app, ["tenants", "import", str(tenants)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    header = [line for line in result.output.splitlines() if line.startswith("┃")]
    assert [cell.strip() for cell in header[0].strip("┃").split("┃")] == [
        "tenant",
        "provider",
        "action",
        "status",
    ]
    assert "│ acme   │ outbox   │        │ created │" in result.output
    assert "│ demo   │ default  │        │ created │" in result.output  # the default sender


def test_doctor_names_the_tenant_the_field_and_the_closest_provider(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(MISSPELT)
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tenants))
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 1, result.output
    rows = {row["check"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert rows["tenants"] == {
        "check": "tenants",
        "status": "problem",
        "detail": f"{tenants}: tenants.acme.provider: 'twillio' is not a registered provider "
        f"(did you mean 'twilio'?); registered: {REGISTERED}, or 'default' (the default sender)",
    }


def test_doctor_is_off_not_a_problem_without_the_default_tenants_file(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service keeps its tenants in its database: no tenants.toml is no problem for it. A
    file the setting names and that is not there still is."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PHONE_ACTIONS_TENANTS_FILE", raising=False)
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    rows = {
        r["check"]: r
        for r in map(json.loads, runner.invoke(app, ["doctor", "--json"]).stdout.splitlines())
    }
    assert rows["tenants"]["status"] == "off"
    assert "serve keeps its tenants in its database" in rows["tenants"]["detail"]
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tmp_path / "named.toml"))
    rows = {
        r["check"]: r
        for r in map(json.loads, runner.invoke(app, ["doctor", "--json"]).stdout.splitlines())
    }
    assert rows["tenants"]["status"] == "problem"


def test_doctor_suggests_the_closest_provider_for_the_default_sender(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text('[tenants.acme]\nprovider = "default"\n')
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tenants))
    monkeypatch.setenv("PHONE_ACTIONS_DEFAULT_SENDER", "outbx")
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 1, result.output
    rows = {row["check"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert rows["default sender"]["detail"] == (
        "PHONE_ACTIONS_DEFAULT_SENDER: 'outbx' is not a registered provider "
        f"(did you mean 'outbox'?); registered: {REGISTERED}"
    )
    assert rows["tenants"]["status"] == "ok"  # provider = "default" is the default sender


def test_replay_suggests_the_closest_provider(runner: CliRunner) -> None:
    recording = Path(__file__).parent / "recordings" / "vonage_sms.jsonl"
    line = error_line(runner.invoke(app, ["replay", str(recording), "--provider", "twillio"]))
    assert line == (
        f"error: no provider named 'twillio' (did you mean 'twilio'?); registered: {REGISTERED}"
    )


def test_send_suggests_the_closest_provider_for_the_default_sender(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text('[tenants.acme]\nprovider = "default"\n')
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tenants))
    monkeypatch.setenv("PHONE_ACTIONS_DEFAULT_SENDER", "twillio")
    line = error_line(runner.invoke(app, SEND))
    assert line == (
        "error: PHONE_ACTIONS_DEFAULT_SENDER: 'twillio' is not a registered provider "
        f"(did you mean 'twilio'?); registered: {REGISTERED}"
    )
