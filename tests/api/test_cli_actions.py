"""``phone-actions actions ...`` against the real app: the commands send Auth0's requests (the
app served in process through the CLI's client factory), print tables or --json, and turn
an API error into one line and exit 1, bad local input into exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from tests.api.conftest import Api, new_tenant, point_cli_at
from tests.api.processes import READY, ServiceProcess
from tests.api.test_actions import ALL, CODE

PHONE_ACTIONS = str(Path(sys.executable).with_name("phone-actions"))
EVENT = {
    "message_options": {
        "action": "second-factor-authentication",
        "code": "123456",
        "message_type": "sms",
        "recipient": "+14155552671",
        "text": "123456 is your code",
    }
}


@pytest.fixture
def cli(api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    """The CLI talking to ``api``'s app, with a token of tenant A carrying every actions
    scope (the URL is a placeholder: the in-process client ignores it)."""
    point_cli_at(api, monkeypatch, api.token(api.tenant_a, *ALL))
    monkeypatch.setenv("PHONE_ACTIONS_CLI_CONFIG", str(tmp_path / "absent.toml"))
    return CliRunner()


def run(cli: CliRunner, *args: str) -> Any:
    return cli.invoke(app, ["actions", *args], prog_name="phone-actions", env={"COLUMNS": "120"})


def test_create_deploy_update_versions_rollback_list_test(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "send.py"
    script.write_text(CODE)
    secrets = tmp_path / "secrets.env"
    secrets.write_text("API_KEY=from-a-file\n")
    name = f"cli-{uuid.uuid4().hex[:8]}"

    created = run(
        cli, "create", name, "--code", str(script), "--secret-file", str(secrets), "--json"
    )
    assert created.exit_code == 0, created.output
    action = json.loads(created.output)
    assert action["name"] == name
    assert "from-a-file" not in created.output

    deployed = run(cli, "deploy", action["id"])
    assert deployed.exit_code == 0, deployed.output
    assert deployed.output.startswith("deployed v1 (")

    script.write_text(CODE.replace("sending to", "v2 to"))
    monkeypatch.setenv("NEW_KEY", "k")
    secrets.write_text("API_KEY=z\n")
    updated = run(
        cli,
        "update",
        action["id"],
        "--code",
        str(script),
        "--secret-file",
        str(secrets),
        "--secret-env",
        "NEW_KEY",
    )
    assert updated.exit_code == 0, updated.output
    assert run(cli, "deploy", action["id"]).exit_code == 0

    versions = json.loads(run(cli, "versions", action["id"], "--json").output)
    assert [v["number"] for v in versions] == [2, 1]
    table = run(cli, "versions", action["id"])
    assert "v2" in table.output
    assert versions[0]["id"] in table.output

    back = run(cli, "rollback", action["id"], versions[1]["id"])
    assert back.exit_code == 0, back.output
    assert back.output.startswith("deployed v3 (")

    listed = run(cli, "list", "--name", name)
    assert name in listed.output
    assert "v3" in listed.output
    as_json = json.loads(run(cli, "list", "--trigger", "send-phone-message", "--json").output)
    assert action["id"] in [a["id"] for a in as_json]

    event = tmp_path / "event.json"
    event.write_text(json.dumps(EVENT))
    tested = run(cli, "test", action["id"], "--event", str(event))
    assert tested.exit_code == 0, tested.output
    assert "ok" in tested.output
    assert "log: sending to +14155552671" in tested.output
    assert '"key_length": 1' in tested.output  # the secret the update gave


def test_api_errors_are_one_line_and_exit_1(cli: CliRunner, tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("def on_execute_send_phone_message(event, api):\n    return (\n")
    refused = run(cli, "create", f"cli-{uuid.uuid4().hex[:8]}", "--code", str(script))
    assert refused.exit_code == 1
    assert refused.output.startswith("error: ")
    assert "line 2" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    missing = run(cli, "deploy", str(uuid.uuid4()))
    assert missing.exit_code == 1
    assert missing.output.startswith("error: no action")


def test_bad_local_input_is_exit_2(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = run(cli, "create", "x", "--code", str(tmp_path / "absent.py"))
    assert absent.exit_code == 2
    assert "--code" in absent.output
    assert run(cli, "update", str(uuid.uuid4())).exit_code == 2
    monkeypatch.delenv("PHONE_ACTIONS_API_TOKEN")
    no_token = run(cli, "list")
    assert no_token.exit_code == 2
    assert "PHONE_ACTIONS_API_TOKEN" in no_token.output


def test_the_config_file_gives_url_and_token(
    api: Api, cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cli.toml"
    config.write_text(f'url = "http://127.0.0.1:9"\ntoken = "{api.token(api.tenant_a, *ALL)}"\n')
    monkeypatch.delenv("PHONE_ACTIONS_API_URL")
    monkeypatch.delenv("PHONE_ACTIONS_API_TOKEN")
    monkeypatch.setenv("PHONE_ACTIONS_CLI_CONFIG", str(config))
    assert run(cli, "list", "--json").exit_code == 0
    config.write_text("url = 5\n")
    broken = run(cli, "list")
    assert broken.exit_code == 2
    assert "url must be a string" in broken.output


def test_against_a_real_serve_process(tmp_path: Path) -> None:
    """The commands as a user runs them: separate processes, real HTTP on 127.0.0.1."""
    data = tmp_path / "data"
    env = {"PHONE_ACTIONS_DATA_DIR": str(data), "PHONE_ACTIONS_DATABASE_URL": ""}
    tenant = new_tenant()
    runner = CliRunner()
    assert runner.invoke(app, ["tenants", "create", tenant], env=env).exit_code == 0
    issued = runner.invoke(
        app, ["token", "create", "--tenant", tenant, "--scope", " ".join(ALL)], env=env
    )
    assert issued.exit_code == 0, issued.output
    script = tmp_path / "send.py"
    script.write_text(CODE)
    service = ServiceProcess([PHONE_ACTIONS, "serve", "--port", "0"], data)
    try:
        url = service.wait_for(READY).group(1)
        client_env = {
            **os.environ,
            "PHONE_ACTIONS_API_URL": url,
            "PHONE_ACTIONS_API_TOKEN": issued.output.strip(),
            "PHONE_ACTIONS_CLI_CONFIG": str(tmp_path / "absent.toml"),
            "COLUMNS": "200",
        }

        def actions(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [PHONE_ACTIONS, "actions", *args],
                env=client_env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        created = actions("create", "real-one", "--code", str(script), "--deploy", "--json")
        assert created.returncode == 0, created.stderr
        action = json.loads(created.stdout)
        assert action["deployed_version"]["number"] == 1
        listed = actions("list")
        assert listed.returncode == 0, listed.stderr
        assert "real-one" in listed.stdout
        assert "v1" in listed.stdout
        missing = actions("deploy", str(uuid.uuid4()))
        assert missing.returncode == 1
        assert missing.stderr.startswith("error: no action")
        assert "Traceback" not in missing.stderr
    finally:
        service.kill()


@pytest.fixture
def no_api_settings(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("PHONE_ACTIONS_API_URL", raising=False)
    monkeypatch.delenv("PHONE_ACTIONS_API_TOKEN", raising=False)
    return CliRunner()


def test_a_config_setting_that_names_a_folder_is_refused_naming_it(
    no_api_settings: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was taken for "no file", and the error then named ~/.config/phone-actions/cli.toml."""
    monkeypatch.setenv("PHONE_ACTIONS_CLI_CONFIG", str(tmp_path))
    result = no_api_settings.invoke(app, ["actions", "list"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: PHONE_ACTIONS_CLI_CONFIG: '{tmp_path}' is a folder: it must name the TOML file"
    ]


def test_a_missing_url_or_token_names_the_configured_file(
    no_api_settings: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "mine.toml"
    monkeypatch.setenv("PHONE_ACTIONS_CLI_CONFIG", str(config))
    result = no_api_settings.invoke(app, ["actions", "list"])
    assert result.exit_code == 2, result.output
    said = result.stderr.strip()
    assert f"or url in PHONE_ACTIONS_CLI_CONFIG's file {config}, which does not exist" in said
    assert "~/.config" not in said
    config.write_text('url = "http://127.0.0.1:9"\n')
    result = no_api_settings.invoke(app, ["actions", "list"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().endswith(
        f"or token in PHONE_ACTIONS_CLI_CONFIG's file {config}"
    ), result.stderr


def test_a_config_file_that_does_not_exist_is_said_to_be_missing(
    no_api_settings: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error said only that the URL was not set: a user who wrote the file elsewhere, or
    misspelt its name, could not tell that it was never read."""
    config = tmp_path / "nope.toml"
    monkeypatch.setenv("PHONE_ACTIONS_CLI_CONFIG", str(config))
    result = no_api_settings.invoke(app, ["actions", "list"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "error: the API's URL is not set: set PHONE_ACTIONS_API_URL (e.g. http://127.0.0.1:8000) "
        f"or url in PHONE_ACTIONS_CLI_CONFIG's file {config}, which does not exist"
    ]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            'url = "http://127.0.0.1:9"\ntokn = "x"\n',
            "'tokn' is not a setting (did you mean 'token'?)",
        ),
        (
            'URL = "http://127.0.0.1:9"\ntoken = "x"\n',
            "'URL' is not a setting (did you mean 'url'?)",
        ),
        ('url = "http://127.0.0.1:9"\ntoken = "x"\ncolour = 1\n', "'colour' is not a setting;"),
    ],
)
def test_an_unknown_key_in_the_config_file_is_refused_naming_it(
    no_api_settings: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    said: str,
) -> None:
    """A misspelt key was ignored: the error then said the token was not set."""
    config = tmp_path / "cli.toml"
    config.write_text(text)
    monkeypatch.setenv("PHONE_ACTIONS_CLI_CONFIG", str(config))
    result = no_api_settings.invoke(app, ["actions", "list"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {config}: {said}"), line
    assert line.endswith("the file takes url and token"), line
