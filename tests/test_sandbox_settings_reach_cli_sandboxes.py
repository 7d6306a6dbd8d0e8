"""The sandboxes the CLI starts on its own (``test-action``, ``replay --action``) get the OS
layers the operator's settings ask for, as the pipeline's do: ``PHONE_ACTIONS_SANDBOX_CGROUP_DIR``
reaches them (it used to be ignored, so its warning could not be silenced)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app

ROOT = Path(__file__).resolve().parents[1]
EVENT = ROOT / "tests" / "events" / "spm_sms_enroll_uk.json"
POOL = "runtime.sandbox.host.pool"


@pytest.fixture
def not_a_cgroup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cgroup folder setting that is wrong on every host: the layer's warning says so."""
    folder = tmp_path / "not-a-cgroup"
    folder.mkdir()
    monkeypatch.setenv("PHONE_ACTIONS_SANDBOX_CGROUP_DIR", str(folder))
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return folder


def cgroup_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == POOL and "cgroup" in r.getMessage()]


def test_test_action_uses_the_cgroup_setting(
    not_a_cgroup: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    script = tmp_path / "a.py"
    script.write_text("def on_execute_send_phone_message(event, api):\n    return 1\n")
    with caplog.at_level(logging.WARNING, logger=POOL):
        result = CliRunner().invoke(app, ["test-action", str(script), "--event", str(EVENT)])
    assert result.exit_code == 0, result.output
    warnings = cgroup_warnings(caplog)
    assert warnings, "no cgroup layer warning"
    assert all(f"{not_a_cgroup}: not a cgroup v2 folder" in w for w in warnings), warnings


def test_replay_of_a_recording_uses_the_cgroup_setting(
    not_a_cgroup: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recording = ROOT / "tests" / "recordings" / "vonage_sms.jsonl"
    action = ROOT / "tenant_actions" / "vonage_sms.py"
    with caplog.at_level(logging.WARNING, logger=POOL):
        result = CliRunner().invoke(app, ["replay", str(recording), "--action", str(action)])
    assert "replay of" in result.output, result.output  # replayed (equal or not: not the point)
    warnings = cgroup_warnings(caplog)
    assert warnings, "no cgroup layer warning"
    assert all(f"{not_a_cgroup}: not a cgroup v2 folder" in w for w in warnings), warnings


def test_cgroups_turned_off_are_said_not_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``PHONE_ACTIONS_SANDBOX_CGROUP_DIR=off`` is the operator's choice: test-action no longer
    warns about it on every run (an INFO line says it)."""
    monkeypatch.setenv("PHONE_ACTIONS_SANDBOX_CGROUP_DIR", "off")
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "a.py"
    script.write_text("def on_execute_send_phone_message(event, api):\n    return 1\n")
    with caplog.at_level(logging.INFO, logger=POOL):
        result = CliRunner().invoke(app, ["test-action", str(script), "--event", str(EVENT)])
    assert result.exit_code == 0, result.output
    said = [r for r in caplog.records if r.name == POOL and "cgroup" in r.getMessage()]
    assert said, "the layers turned off are not said at all"
    assert {r.levelno for r in said} == {logging.INFO}
    assert all("disabled (sandbox_cgroup_dir = off)" in r.getMessage() for r in said)
