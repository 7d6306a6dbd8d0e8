"""Where a tenants file's path came from is what its error names: ``tenants import FILE``'s
argument (``FILE``), or the setting PHONE_ACTIONS_TENANTS_FILE for the commands that read the
setting. One ``error:`` line, exit 2, and nothing written when the argument is wrong."""

from __future__ import annotations

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
