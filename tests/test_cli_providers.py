"""``phone-actions providers`` and ``providers try``: real plugins, a local stub provider."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.cli_providers import credential_variable
from tests.support.stub_server import StubServer, free_port

API_KEY = "mitto-cli-key-1234"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tmp_path / "none.toml"))
    return CliRunner()


@pytest.fixture
def mitto() -> Iterator[StubServer]:
    with StubServer() as server:
        server.respond(200, {"id": "mitto-42", "responseCode": 0, "responseText": "SMS sent"})
        yield server


def test_providers_lists_channels_settings_and_credentials(runner: CliRunner) -> None:
    result = runner.invoke(app, ["providers", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert {"outbox", "twilio", "mitto", "custom", "phone-message-hook"} <= set(rows)
    mitto = rows["mitto"]
    assert (mitto["plugin"], mitto["channels"]) == ("plugins.mitto", ["sms"])
    assert [(f["name"], f["required"]) for f in mitto["settings"]] == [
        ("sender", True),
        ("base_url", False),
        ("path", False),
    ]
    assert [f["name"] for f in mitto["credentials"]] == ["api_key"]
    assert rows["twilio"]["channels"] == ["sms", "voice"]


def test_providers_table_names_every_provider(runner: CliRunner) -> None:
    result = runner.invoke(app, ["providers"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("outbox", "twilio", "mitto"):
        assert name in result.output
    assert "api_key*" in result.output


def test_try_sends_one_message_with_credentials_from_the_environment(
    runner: CliRunner, mitto: StubServer
) -> None:
    result = runner.invoke(
        app,
        [
            "providers",
            "try",
            "mitto",
            "--to",
            "+44 7911 123456",
            "--json",
            "--set",
            "sender=Acme",
            "--set",
            f"base_url={mitto.url}",
        ],
        env={credential_variable("mitto", "api_key"): API_KEY},
    )
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert (outcome["status"], outcome["message_id"]) == ("sent", "mitto-42")
    (sent,) = mitto.requests
    assert sent.headers["X-Mitto-API-Key"] == API_KEY
    body = orjson.loads(sent.body)
    assert (body["from"], body["to"]) == ("Acme", "447911123456")
    assert "verification code" in body["text"]


def test_try_reports_a_failure_with_its_fallback_facts_and_exit_1(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "providers",
            "try",
            "mitto",
            "--to",
            "+447911123456",
            "--json",
            "--set",
            "sender=Acme",
            "--set",
            f"base_url=http://127.0.0.1:{free_port()}",
        ],
        env={"MITTO_API_KEY": API_KEY},
    )
    assert result.exit_code == 1, result.output
    outcome = json.loads(result.output)
    assert (outcome["status"], outcome["error_code"]) == ("failed", "connection_error")
    assert (outcome["retryable"], outcome["handed_off"]) == (True, False)


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["mitto", "--to", "+447911123456", "--set", "sender=A"],
            {},
            "not set: set MITTO_API_KEY in the environment or in .env",
        ),
        (
            ["mitto", "--to", "+447911123456"],
            {"MITTO_API_KEY": API_KEY},
            "sender: missing (it is required)",
        ),
        (
            ["mitto", "--to", "+447911123456", "--set", "sender=A", "--set", "colour=red"],
            {"MITTO_API_KEY": API_KEY},
            "colour: not a known setting (check the spelling)",
        ),
        (["mitto", "--to", "+447911123456", "--set", "sender"], {}, "expected KEY=VALUE"),
        (["nope", "--to", "+447911123456"], {}, "no provider named 'nope'"),
        (["mitto", "--to", "12"], {}, "--to:"),
        (["mitto", "--to", "+447911123456", "--channel", "voice"], {}, "does not send voice"),
    ],
)
def test_bad_input_names_the_problem_and_exits_2(
    runner: CliRunner, args: list[str], env: dict[str, str], expected: str
) -> None:
    result = runner.invoke(app, ["providers", "try", *args], env=env)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert API_KEY not in result.output


VARIABLES = "(variables read from the environment or from .env)"


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["vonage", "--set", "sender=Acme"],
            {},
            "error: credentials of 'vonage': set VONAGE_API_KEY and VONAGE_API_SECRET (SMS), or "
            f"VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY (voice) {VARIABLES}",
        ),
        (
            ["vonage", "--set", "sender=Acme"],
            {"VONAGE_API_KEY": API_KEY},
            "error: credentials of 'vonage': VONAGE_API_KEY and VONAGE_API_SECRET go together "
            f"(SMS) {VARIABLES}",
        ),
        (
            ["vonage", "--set", "sender=Acme"],
            {"VONAGE_API_KEY": ""},
            f"error: credentials of 'vonage': VONAGE_API_KEY: must not be empty {VARIABLES}",
        ),
        (
            ["sns", "--set", "region=us-east-1"],
            {"SNS_ACCESS_KEY_ID": "AKIA" + "0" * 16},
            "error: credentials of 'sns': set both SNS_ACCESS_KEY_ID and SNS_SECRET_ACCESS_KEY, "
            f"or neither {VARIABLES}",
        ),
        (
            ["twilio", "--set", "from_number=+15017122661"],
            {},
            "error: credentials of 'twilio' not set: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN "
            "in the environment or in .env",
        ),
    ],
)
def test_a_credential_problem_names_the_variables_to_set(
    runner: CliRunner, args: list[str], env: dict[str, str], expected: str
) -> None:
    """The providers word their credential errors for a tenants file (``api_key``); here the
    user sets variables, so the line names them."""
    result = runner.invoke(app, ["providers", "try", *args, "--to", "+447911123456"], env=env)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == expected
    assert API_KEY not in result.output


NO_AWS = {  # botocore's chain finds nothing, and asks no metadata service
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
}


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["sinch"],
            {},
            "error: settings of 'sinch': Sinch SMS needs the service_plan_id setting "
            "(--set service_plan_id=VALUE)",
        ),
        (
            ["sinch", "--set", "service_plan_id=plan-1"],
            {},
            f"error: credentials of 'sinch': Sinch SMS needs the SINCH_API_TOKEN credential "
            f"{VARIABLES}",
        ),
        (
            ["sinch", "--channel", "voice", "--set", "from_number=+15017122661"],
            {},
            "error: credentials of 'sinch': Sinch voice needs the SINCH_APPLICATION_KEY and "
            f"SINCH_APPLICATION_SECRET credentials {VARIABLES}",
        ),
        (
            ["sns", "--set", "region=us-east-1"],
            NO_AWS,
            "error: credentials of 'sns': Amazon SNS has no AWS credentials: SNS_ACCESS_KEY_ID "
            "and SNS_SECRET_ACCESS_KEY are not set and botocore's default credential chain "
            f"found none {VARIABLES}",
        ),
        (
            ["vonage", "--channel", "voice", "--set", "from_number=+15017122661"],
            {"VONAGE_API_KEY": API_KEY, "VONAGE_API_SECRET": "vonage-secret-1234"},
            "error: credentials of 'vonage': Vonage voice calls need the VONAGE_APPLICATION_ID "
            f"and VONAGE_PRIVATE_KEY credentials {VARIABLES}",
        ),
        (
            ["twilio", "--channel", "voice", "--set", "messaging_service_sid=MG" + "a" * 32],
            {"TWILIO_ACCOUNT_SID": "AC" + "a" * 32, "TWILIO_AUTH_TOKEN": API_KEY},
            "error: settings of 'twilio': Twilio voice calls need from_number (a Messaging "
            "Service SID only sends SMS) (--set from_number=VALUE)",
        ),
    ],
)
def test_what_the_provider_would_refuse_is_bad_input_before_anything_is_sent(
    runner: CliRunner, args: list[str], env: dict[str, str], expected: str
) -> None:
    """The provider's own send-time checks, run up front: one line naming the variable or the
    ``--set`` key, exit 2 (bad local configuration), nothing sent."""
    result = runner.invoke(
        app, ["providers", "try", *args, "--to", "+447911123456", "--json"], env=env
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == expected
    assert result.stdout == ""
    assert API_KEY not in result.output


def test_an_unknown_provider_names_the_closest_and_the_registered_ones(
    runner: CliRunner,
) -> None:
    result = runner.invoke(app, ["providers", "try", "twillio", "--to", "+447911123456"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        "error: no provider named 'twillio' (did you mean 'twilio'?); registered: "
        "clickatell, clicksend, custom, esendex, infobip, messagebird, mitto, outbox, "
        "phone-message-hook, plivo, sinch, sns, telesign, twilio, vonage"
    )


def test_a_national_number_is_asked_in_international_form_not_of_a_tenant(
    runner: CliRunner,
) -> None:
    """``providers try`` runs outside any tenant: a tenant's default_country cannot help."""
    result = runner.invoke(app, ["providers", "try", "outbox", "--to", "12345"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "error: --to: has no country code: give the number in international form, + and the "
        "country code (+1 415 555 2671)"
    ]
    assert "default_country" not in result.stderr


def test_the_outbox_says_it_stored_the_message_and_sent_none(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["providers", "try", "outbox", "--to", "+447911123456"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    line = re.sub(r"[0-9a-f]{32}", "ID", re.sub(r"\(\d+\.\d ms\)", "(T ms)", result.stdout))
    assert line.strip() == "stored sms in outbox, not sent to a phone: message id ID (T ms)"


def test_no_provider_names_a_credential_field_where_a_variable_is_meant(
    runner: CliRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every registered provider, without any credential variable set: the refusal (if any)
    names ``<PROVIDER>_<CREDENTIAL>`` variables, never a bare credential field."""
    import re

    import typer

    from runtime.cli_providers import _credentials, _registry

    refused = 0
    for provider in _registry():  # loaded as the command loads them
        fields = list(provider.credentials_model.model_fields)
        try:
            _credentials(provider, environ={})
        except typer.Exit:
            refused += 1
            line = capsys.readouterr().err.strip()
            assert "the environment or" in line, line
            assert ".env" in line, line
            assert any(credential_variable(provider.name, f) in line for f in fields), line
            bare = [f for f in fields if re.search(rf"(?<![\w-]){f}(?![\w-])", line)]
            assert not bare, line
    assert refused >= 10  # clickatell, vonage, twilio...: most need a credential


def test_cli_md_documents_providers_try_and_each_of_its_options() -> None:
    import typer.main

    text = (Path(__file__).parents[1] / "docs" / "cli.md").read_text("utf-8")
    assert "### `providers try`" in text
    group = typer.main.get_command(app).commands["providers"]  # type: ignore[attr-defined]
    command = group.commands["try"]
    options = [opt for p in command.params if p.param_type_name == "option" for opt in p.opts]
    assert {"--to", "--set", "--channel", "--json"} <= set(options)
    undocumented = [opt for opt in options if f"`{opt}`" not in text]
    assert not undocumented, undocumented


def test_plivo_answers_serves_stored_answers_from_the_runtime_database(tmp_path: Path) -> None:
    """The command a Plivo tenant's answer_base_url points at, run as a real process."""
    import os
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    from plugins.plivo import AnswerStore

    data = tmp_path / "data"
    env = {**os.environ, "PHONE_ACTIONS_DATA_DIR": str(data)}
    env.pop("PHONE_ACTIONS_DATABASE_URL", None)
    store = AnswerStore.from_url(f"sqlite:///{data / 'phone-actions.sqlite3'}")
    token = store.put("<Response><Speak>7. 3. 5.</Speak></Response>", 600)
    store.close()
    port = free_port()
    command = [sys.executable, "-m", "runtime.cli", "providers", "plivo-answers"]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}/plivo/answer"
        deadline = time.monotonic() + 20
        while True:  # poll until the server listens (no fixed sleep)
            try:
                with urllib.request.urlopen(f"{base}/{token}", data=b"") as answer:
                    body = answer.read().decode()
                break
            except urllib.error.URLError as exc:
                if isinstance(exc, urllib.error.HTTPError) or time.monotonic() > deadline:
                    raise
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
        assert "<Speak>7. 3. 5.</Speak>" in body
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/not-a-token")
        assert missing.value.code == 404
    finally:
        server.terminate()
        server.wait(10)


def test_cli_md_documents_plivo_answers_and_its_options() -> None:

    text = (Path(__file__).parents[1] / "docs" / "cli.md").read_text("utf-8")
    assert "### `providers plivo-answers`" in text
    from runtime.cli_plugins import with_plugin_commands

    group: Any = with_plugin_commands(app).commands["providers"]  # plugins.plivo adds it
    options = [o for p in group.commands["plivo-answers"].params for o in p.opts]
    assert options
    assert all(f"`{o}`" in text for o in options), options
