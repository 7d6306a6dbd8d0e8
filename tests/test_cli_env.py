"""Credentials kept in the ``.env`` file are found, as settings already are.

pydantic-settings reads ``PHONE_ACTIONS_*`` from ``.env``; the variables a tenant's
``credentials_env`` names, and ``providers try``'s ``<PROVIDER>_<CREDENTIAL>``, are read from
the same file, with the process environment winning over it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.settings import Settings
from runtime.tenants import TomlTenantDirectory
from tests.support.stub_server import StubServer

TENANTS = {
    "tenants": {
        "acme": {
            "provider": "mitto",
            "provider_settings": {"sender": "Acme"},
            "credentials_env": {"api_key": "ACME_MITTO_KEY"},
        }
    }
}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder, as the operator starts phone-actions from it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ACME_MITTO_KEY", raising=False)
    monkeypatch.delenv("MITTO_API_KEY", raising=False)
    return tmp_path


def test_the_env_file_is_the_one_settings_read(folder: Path) -> None:
    assert Settings.model_config.get("env_file") == ".env"
    (folder / ".env").write_text("PHONE_ACTIONS_ATTEMPT_TIMEOUT=7\n")
    assert Settings().attempt_timeout == 7


def test_tenant_credentials_come_from_the_env_file(folder: Path) -> None:
    (folder / ".env").write_text('# secrets\nexport ACME_MITTO_KEY="from-dotenv"\n')
    directory = TomlTenantDirectory.from_mapping(TENANTS)
    assert directory.credentials(directory.get("acme")) == {"api_key": "from-dotenv"}


def test_the_process_environment_wins_over_the_env_file(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / ".env").write_text("ACME_MITTO_KEY=from-dotenv\n")
    monkeypatch.setenv("ACME_MITTO_KEY", "from-process")
    directory = TomlTenantDirectory.from_mapping(TENANTS)
    assert directory.credentials(directory.get("acme")) == {"api_key": "from-process"}


def test_without_an_env_file_a_missing_credential_is_still_named(folder: Path) -> None:
    directory = TomlTenantDirectory.from_mapping(TENANTS)
    with pytest.raises(Exception, match=r"api_key \(environment variable ACME_MITTO_KEY\)"):
        directory.credentials(directory.get("acme"))


@pytest.fixture
def mitto() -> Iterator[StubServer]:
    with StubServer() as server:
        server.respond(200, {"id": "mitto-7", "responseCode": 0, "responseText": "SMS sent"})
        yield server


def test_providers_try_reads_its_credential_from_the_env_file(
    folder: Path, mitto: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(folder / "data"))
    (folder / ".env").write_text("MITTO_API_KEY=dotenv-key-123\n")
    result = CliRunner().invoke(
        app,
        [
            *("providers", "try", "mitto", "--to", "+447911123456", "--json"),
            *("--set", "sender=Acme", "--set", f"base_url={mitto.url}"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "sent"
    (sent,) = mitto.requests
    assert sent.headers["X-Mitto-API-Key"] == "dotenv-key-123"


def test_an_env_file_that_is_not_utf8_is_one_line_naming_it(folder: Path) -> None:
    """A UTF-16 file from a Windows editor: one ``error:`` line and exit 2, no traceback."""
    (folder / ".env").write_bytes(b"\xff\xfeP\x00=\x001\x00\n\x00")
    send = ["send", "--tenant", "acme", "--to", "+14155552671", "--code", "123456"]
    for command in (["doctor"], send):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines() == [
            "error: invalid settings: .env file: not UTF-8 text (byte 1: invalid start byte)"
        ]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_setting_that_is_not_a_finite_number_is_refused_naming_it(
    folder: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PHONE_ACTIONS_IDEMPOTENCY_WAIT", value)
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 2, result.output
    assert "PHONE_ACTIONS_IDEMPOTENCY_WAIT: should be a finite number" in result.output
