"""``test-action --allow-host`` takes what PHONE_ACTIONS_SANDBOX_ALLOW_HTTP_HOSTS takes, by the
same rule (runtime.settings.host_entry_problem): a URL, a bad port or a name with a space is
one ``error: --allow-host 'ENTRY': reason`` line and exit 2, before any script runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.errors import ConfigurationError
from runtime.settings import load_settings
from tests.support.events import EVENTS_DIR
from tests.test_cli_errors import error_line

EVENT = EVENTS_DIR / "spm_sms_verify_us.json"
RETURNS = "def on_execute_send_phone_message(event, api):\n    return {'id': 'm-1'}\n"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHONE_ACTIONS_SANDBOX_TIMEOUT", "2")
    monkeypatch.delenv("PHONE_ACTIONS_SANDBOX_ALLOW_HTTP_HOSTS", raising=False)
    return CliRunner()


def _test_action(runner: CliRunner, tmp_path: Path, *entries: str) -> str:
    path = tmp_path / "a.py"
    path.write_text(RETURNS)
    args = ["test-action", str(path), "--event", str(EVENT), "--json"]
    for entry in entries:
        args += ["--allow-host", entry]
    return error_line(runner.invoke(app, args))


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("http://x", "a URL or a path, not a host"),
        ("a:99999", "port '99999' is not a number from 1 to 65535"),
        ("bad host!", "not a host name or IPv4 address"),
        ("[::1", "unbalanced brackets"),
    ],
)
def test_a_bad_entry_is_one_line_naming_it(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: str, reason: str
) -> None:
    line = _test_action(runner, tmp_path, "localhost:8080", entry)
    assert line.startswith(f"error: --allow-host {entry!r}: {reason}"), line
    assert "validation error" not in line
    # the setting refuses the same entry, for the same reason
    monkeypatch.setenv("PHONE_ACTIONS_SANDBOX_ALLOW_HTTP_HOSTS", f'["{entry}"]')
    with pytest.raises(ConfigurationError, match=re.escape(reason)):
        load_settings()


def test_good_entries_are_taken(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    path.write_text(RETURNS)
    args = ["test-action", str(path), "--event", str(EVENT), "--json"]
    for entry in ("localhost", "127.0.0.1:8080", "[::1]:9000", "fake.internal"):
        args += ["--allow-host", entry]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
