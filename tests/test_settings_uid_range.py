"""PHONE_ACTIONS_SANDBOX_UID_COUNT must be at least PHONE_ACTIONS_SANDBOX_MAX_WORKERS (each
tenant with workers holds a uid of the range): a smaller count is one line naming both, for
every command (``doctor`` included), and docs/configuration.md states the range's bounds."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.errors import ConfigurationError
from runtime.settings import Settings, load_settings
from tests.test_cli_errors import error_line

ROOT = Path(__file__).resolve().parents[1]
BOTH = "PHONE_ACTIONS_SANDBOX_UID_COUNT (8) must be at least PHONE_ACTIONS_SANDBOX_MAX_WORKERS (9)"


@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tmp_path / "tenants.toml"))
    monkeypatch.setenv("PHONE_ACTIONS_SANDBOX_MAX_WORKERS", "9")
    monkeypatch.setenv("PHONE_ACTIONS_SANDBOX_UID_COUNT", "8")


def test_fewer_uids_than_workers_is_one_line_naming_both() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"invalid settings: {BOTH}: "), message
    assert "\n" not in message
    assert "Value error" not in message
    assert "PHONE_ACTIONS_:" not in message  # not a setting's name with nothing after it


def test_doctor_refuses_it() -> None:
    line = error_line(CliRunner().invoke(app, ["doctor"]))
    assert line.startswith(f"error: invalid settings: {BOTH}: "), line


def test_as_many_uids_as_workers_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHONE_ACTIONS_SANDBOX_UID_COUNT", "9")
    settings = load_settings()
    assert (settings.sandbox_uid_count, settings.sandbox_max_workers) == (9, 9)
    assert Settings(_env_file=None, sandbox_max_workers=1, sandbox_uid_count=1)


@pytest.mark.parametrize("field", ["sandbox_uid_base", "sandbox_uid_count"])
def test_configuration_md_states_the_bounds(field: str) -> None:
    schema = Settings.model_json_schema()["properties"][field]
    low, high = schema["minimum"], schema["maximum"]
    text = (ROOT / "docs" / "configuration.md").read_text("utf-8")
    (row,) = [line for line in text.splitlines() if line.startswith(f"| `{field}` |")]
    if low > 1:  # a count of at least 1 goes without saying
        assert f"At least {low}," in row, row
    assert f"at most {high} " in row.lower(), row
