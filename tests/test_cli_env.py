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
from runtime.settings import Settings, load_settings
from runtime.tenants import TomlTenantDirectory
from tests.support.stub_server import StubServer
from tests.test_cli_errors import cli, error_line

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


# A bad PHONE_ACTIONS_ line of .env: one line naming the file, the line and the setting, exit 2.
# Other variables of .env are credentials and stay accepted; prefixed variables of the process
# environment that are no settings (PHONE_ACTIONS_TEST_POSTGRES_URL) are not the file's business.


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (
            "PHONE_ACTIONS_DATABSE_URL=sqlite:///x.db",
            "PHONE_ACTIONS_DATABSE_URL is not a setting (did you mean PHONE_ACTIONS_DATABASE_URL?)",
        ),
        (
            "export phone_actions_atempt_timeout=7",  # read case-insensitively, like settings
            "phone_actions_atempt_timeout is not a setting "
            "(did you mean PHONE_ACTIONS_ATTEMPT_TIMEOUT?)",
        ),
        (
            "PHONE_ACTIONS_STORE_TIMEOT=2",
            "PHONE_ACTIONS_STORE_TIMEOT is not a setting "
            "(did you mean PHONE_ACTIONS_STORE_TIMEOUT?)",
        ),
        (
            "PHONE_ACTIONS_ATTEMPT_TIMEOUT",
            "PHONE_ACTIONS_ATTEMPT_TIMEOUT: cannot be parsed (no = after the name)",
        ),
        (
            "ACME_TWILIO_AUTH_TOKEN",
            "ACME_TWILIO_AUTH_TOKEN: cannot be parsed (no = after the name)",
        ),
        (
            "PHONE_ACTIONS_ATTEMPT_TIMEOUT=500",  # out of range: the line, several may set it
            "PHONE_ACTIONS_ATTEMPT_TIMEOUT: should be at most 60",
        ),
    ],
)
def test_an_unknown_setting_in_the_env_file_is_one_line_naming_it(
    folder: Path, line: str, says: str
) -> None:
    (folder / ".env").write_text(f"# secrets\nTWILIO_AUTH_TOKEN=abc\n{line}\n")
    send = ["send", "--tenant", "acme", "--to", "+14155552671", "--code", "123456"]
    for command in (["doctor"], send):
        assert error_line(CliRunner().invoke(app, command)) == (
            f"error: invalid settings: .env line 3: {says}"
        )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "PHONE_ACTIONS_ATTEMPT_TIMEOUT 7\n",
            ".env line 2: PHONE_ACTIONS_ATTEMPT_TIMEOUT: cannot be parsed (no = after the name)",
        ),
        (
            'TWILIO_AUTH_TOKEN="abc\nPHONE_ACTIONS_ATTEMPT_TIMEOUT=7\n',
            ".env line 2: TWILIO_AUTH_TOKEN: cannot be parsed "
            "(a quote that is not closed, or text after the closing quote)",
        ),
        ("'unclosed\n", ".env line 2: cannot be parsed (want NAME=value)"),
    ],
)
def test_a_line_the_env_file_cannot_parse_is_one_line_naming_it(
    folder: Path, text: str, says: str
) -> None:
    """In a process of its own, so that python-dotenv's warning would show: it must not."""
    (folder / ".env").write_text(f"MITTO_API_KEY=abc\n{text}")
    assert error_line(cli("doctor")) == f"error: invalid settings: {says}"


def test_a_json_setting_in_the_env_file_that_is_not_json_names_its_line(folder: Path) -> None:
    (folder / ".env").write_text("MITTO_API_KEY=abc\n\nPHONE_ACTIONS_OUTBOUND_ALLOW_HOSTS='[bad'\n")
    assert error_line(CliRunner().invoke(app, ["doctor"])) == (
        "error: invalid settings: .env line 3: PHONE_ACTIONS_OUTBOUND_ALLOW_HOSTS: not valid "
        'JSON (expected a JSON list like ["a", "b"]): expecting value at character 2'
    )


def test_credentials_and_settings_in_the_env_file_stay_accepted(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / ".env").write_text(
        "TWILIO_AUTH_TOKEN=abc\nexport ACME_MITTO_KEY='k'\nPHONE_ACTIONS_ATTEMPT_TIMEOUT=7\n"
        'PHONE_ACTIONS_SANDBOX_ALLOW_HTTP_HOSTS=["localhost:8080"]\n'
        # the project's variables that are no settings, for a shell that exports the file
        "PHONE_ACTIONS_API_TOKEN=t\nPHONE_ACTIONS_TEST_REDIS_URL=redis://127.0.0.1:9\n"
        # a credential a tenant's credentials_env names: close to no setting's name
        "PHONE_ACTIONS_ACME_SID=AC123\nPHONE_ACTIONS_TWILIO_TOKEN=t\n"
    )
    monkeypatch.setenv("PHONE_ACTIONS_TEST_POSTGRES_URL", "postgresql://x")  # not in .env: ignored
    monkeypatch.setenv("PHONE_ACTIONS_DATABSE_URL", "sqlite:///x.db")
    settings = load_settings()
    assert (settings.attempt_timeout, settings.sandbox_allow_http_hosts) == (7, ["localhost:8080"])
    assert "error:" not in CliRunner().invoke(app, ["doctor"]).stderr


def test_an_env_file_that_is_a_folder_is_one_line(folder: Path) -> None:
    """What Docker makes for a bind-mounted file that is missing: never silently no settings."""
    (folder / ".env").mkdir()
    assert error_line(CliRunner().invoke(app, ["doctor"])) == (
        "error: invalid settings: .env file: is a folder, not a file"
    )


def test_the_actions_commands_read_the_apis_url_and_token_from_the_env_file(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.cli_actions import load_cli_config

    monkeypatch.delenv("PHONE_ACTIONS_API_URL", raising=False)
    monkeypatch.delenv("PHONE_ACTIONS_API_TOKEN", raising=False)
    (folder / ".env").write_text(
        "PHONE_ACTIONS_API_URL=http://127.0.0.1:1\nPHONE_ACTIONS_API_TOKEN=t\n"
    )
    assert load_cli_config() == ("http://127.0.0.1:1", "t")
