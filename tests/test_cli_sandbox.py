"""``phone-actions test-action`` and ``doctor`` as a tenant or an operator runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.sandbox.guest.oslimits import seccomp_status
from runtime.sandbox.shared.oslayers import LAYERS
from tests.support.events import EVENTS_DIR
from tests.support.stub_server import StubServer

EVENT = EVENTS_DIR / "spm_sms_verify_us.json"

POSTS = """
def on_execute_send_phone_message(event, api):
    r = api.http.post(event.secrets.URL, json={"to": event.message_options.recipient},
                      headers={"Authorization": "Bearer " + event.secrets.KEY})
    print("answered", r["status"], "with key", event.secrets.KEY)
    return {"id": r["json"]["id"]}
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHONE_ACTIONS_SANDBOX_TIMEOUT", "2")
    return CliRunner()


@pytest.fixture
def fake() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def script(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(source)
    return str(path)


def test_each_script_gets_one_json_line_with_the_documented_keys(
    runner: CliRunner, tmp_path: Path, fake: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.respond(200, {"id": "m-7"})
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"# the action's secrets\nexport URL='{fake.url}/sms'\n\n")
    monkeypatch.setenv("KEY", "sk-local-123")
    good = script(tmp_path, "good.py", POSTS)
    broken = script(tmp_path, "broken.py", "def on_execute_send_phone_message(event, api)\n")
    result = runner.invoke(
        app,
        [
            "test-action",
            good,
            broken,
            "--event",
            str(EVENT),
            "--json",
            "--allow-host",
            fake.url.removeprefix("http://"),
            "--secret-file",
            str(secrets),
            "--secret-env",
            "KEY",
        ],
    )
    assert result.stderr == ""  # no warning: no secret on the command line
    first, second = (json.loads(line) for line in result.output.splitlines())
    assert set(first) == {
        "script",
        "outcome",
        "error",
        "result",
        "logs",
        "http",
        "handed_off",
        "duration_ms",
    }
    assert (first["outcome"], first["result"], first["handed_off"]) == ("ok", {"id": "m-7"}, True)
    assert first["logs"] == ["answered 200 with key ******"]
    assert [c["status"] for c in first["http"]] == [200]
    assert second["outcome"] == "compile_error"
    assert second["error"].startswith("line 1, column ")
    assert result.exit_code == 1  # one script did not end ok
    assert fake.requests[0].headers["authorization"] == "Bearer sk-local-123"


def test_runtime_error_shows_the_tenants_own_line(runner: CliRunner, tmp_path: Path) -> None:
    source = "def on_execute_send_phone_message(event, api):\n    x = 0\n    return 1 / x\n"
    result = runner.invoke(
        app, ["test-action", script(tmp_path, "div.py", source), "--event", str(EVENT)]
    )
    assert result.exit_code == 1
    assert "runtime_error" in result.output
    assert 'File "<action:div>", line 3' in result.output


def test_trigger_converts_the_event(runner: CliRunner, tmp_path: Path) -> None:
    source = (
        "def on_execute_custom_phone_provider(event, api):\n"
        "    return [event.notification.delivery_method, event.notification.message_type]\n"
    )
    result = runner.invoke(
        app,
        [
            "test-action",
            script(tmp_path, "c.py", source),
            "--event",
            str(EVENT),
            "--trigger",
            "custom-phone-provider",
            "--json",
        ],
    )
    assert json.loads(result.output)["result"] == ["text", "otp_verify"]
    assert result.exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--secret", "1st=x"], "expected NAME=VALUE"),
        (["--secret", "SMS-KEY=x"], "expected NAME=VALUE"),
        (["--secret", "K" * 129 + "=x"], "at most 128"),
        (["--allow-host", "http://x/"], "--allow-host"),
    ],
)
def test_bad_options_exit_2(
    runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    path = script(tmp_path, "a.py", "def on_execute_send_phone_message(event, api):\n    pass\n")
    result = runner.invoke(app, ["test-action", path, "--event", str(EVENT), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_secret_on_the_command_line_works_but_warns(runner: CliRunner, tmp_path: Path) -> None:
    source = "def on_execute_send_phone_message(event, api):\n    return len(event.secrets.KEY)\n"
    path = script(tmp_path, "a.py", source)
    result = runner.invoke(
        app, ["test-action", path, "--event", str(EVENT), "--secret", "KEY=abc", "--json"]
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["result"] == 3
    assert "visible" not in result.stdout
    assert "other local users can read it" in result.stderr
    assert "--secret-file" in result.stderr


def test_a_lower_case_secret_the_api_accepts_works_here_too(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Secret names are case-sensitive identifiers, as in Auth0 and the Management API: a
    tenant's ``sms_key`` can be tried locally under the same name, from each source."""
    source = (
        "def on_execute_send_phone_message(event, api):\n"
        "    return [event.secrets.sms_key, event.secrets.Sms_Url, event.secrets['_from']]\n"
    )
    path = script(tmp_path, "a.py", source)
    secrets = tmp_path / "secrets.env"
    secrets.write_text("Sms_Url=https://sms.example\n")
    result = runner.invoke(
        app,
        [
            "test-action",
            path,
            "--event",
            str(EVENT),
            "--secret",
            "sms_key=k-1234",
            "--secret-file",
            str(secrets),
            "--secret-env",
            "_from",
            "--json",
        ],
        env={"_from": "+15550100"},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["result"] == ["******", "******", "******"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("A=1\n# fine\n2nd=2\n", "line 3: expected NAME=VALUE"),
        ("A=1\nB\n", "line 2: expected NAME=VALUE"),
        ("A='unterminated\n", "line 1: expected NAME=VALUE"),
    ],
)
def test_bad_secret_file_line_exits_2_naming_the_line(
    runner: CliRunner, tmp_path: Path, content: str, message: str
) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text(content)
    path = script(tmp_path, "a.py", "def on_execute_send_phone_message(event, api):\n    pass\n")
    result = runner.invoke(
        app, ["test-action", path, "--event", str(EVENT), "--secret-file", str(secrets)]
    )
    assert result.exit_code == 2
    assert f"--secret-file {secrets}, {message}" in result.stderr
    assert "Traceback" not in result.output


def test_secret_env_must_be_set(runner: CliRunner, tmp_path: Path) -> None:
    path = script(tmp_path, "a.py", "def on_execute_send_phone_message(event, api):\n    pass\n")
    result = runner.invoke(
        app, ["test-action", path, "--event", str(EVENT), "--secret-env", "NOT_SET_ANYWHERE"]
    )
    assert result.exit_code == 2
    assert "--secret-env NOT_SET_ANYWHERE: environment variable" in result.stderr


def test_bad_event_file_exits_2_naming_the_field(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "event.json"
    bad.write_text('{"message_options": {"action": "enrollment"}, "tenant": {"id": "a"}}')
    path = script(tmp_path, "a.py", "def on_execute_send_phone_message(event, api):\n    pass\n")
    result = runner.invoke(app, ["test-action", path, "--event", str(bad)])
    assert result.exit_code == 2
    assert "message_options.code" in result.output


def test_doctor_reports_each_check(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text('[tenants.acme]\nprovider = "outbox"\n')
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tenants))
    result = runner.invoke(app, ["doctor"])
    for check in ("python", "RestrictedPython", "seccomp", "plugins", "tenants", "data folder"):
        assert check in result.output
    for layer in LAYERS:  # each OS layer, ok or off with the reason
        assert layer in result.output
    if seccomp_status()[0]:  # a missing layer (cgroups, often) degrades, it does not fail
        assert result.exit_code == 0, result.output
    assert "1 in" in result.output

    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tmp_path / "missing.toml"))
    broken = runner.invoke(app, ["doctor"])
    assert broken.exit_code == 1
    assert "problem" in broken.output
