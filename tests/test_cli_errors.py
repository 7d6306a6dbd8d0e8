"""Bad configuration through the real CLI: one ``error:`` line naming the setting or path, exit 2.

Faults are real: a file where a folder should be, a folder where a file should be, paths under
/proc and /sys, a port on 127.0.0.1 where nothing listens, a read-only bind mount and a full
tmpfs (both need mount privileges and are skipped without them), /dev/full as the log.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic_settings import EnvSettingsSource
from typer.testing import CliRunner, Result

from runtime.cli import app
from runtime.settings import Settings

TENANTS = """
[tenants.acme]
provider = "outbox"

[tenants.us]
provider = "outbox"
default_country = "US"
"""
SEND = ["send", "--tenant", "acme", "--to", "+14155552671", "--code", "123456", "--json"]


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(TENANTS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tenants))
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    for name in ("DATABASE_URL", "LOG_FILE", "SANDBOX_ALLOW_HTTP_HOSTS"):
        monkeypatch.delenv(f"PHONE_ACTIONS_{name}", raising=False)
    return CliRunner()


def error_line(result: Result | subprocess.CompletedProcess[str]) -> str:
    """The one line a bad configuration prints, checked to be one line and no traceback."""
    if isinstance(result, subprocess.CompletedProcess):
        code, output = result.returncode, result.stdout + result.stderr
    else:
        code, output = result.exit_code, result.output
    assert code == 2, (code, output)
    assert "Traceback" not in output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_unknown_database_dialect(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHONE_ACTIONS_DATABASE_URL", "bogus://")
    assert "PHONE_ACTIONS_DATABASE_URL" in error_line(runner.invoke(app, SEND))


def test_unreachable_postgresql(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("psycopg")
    with socket.socket() as probe:  # a port on 127.0.0.1 that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://postgres:hunter2@127.0.0.1:{port}/test"
    monkeypatch.setenv("PHONE_ACTIONS_DATABASE_URL", url)
    line = error_line(runner.invoke(app, SEND))
    assert f"127.0.0.1:{port}" in line
    assert "hunter2" not in line  # the password is never printed


def test_the_store_is_opened_before_anything_is_sent(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PHONE_ACTIONS_DATABASE_URL", "bogus://")
    error_line(runner.invoke(app, SEND))
    monkeypatch.delenv("PHONE_ACTIONS_DATABASE_URL")
    outbox = runner.invoke(app, ["outbox", "--json"])
    assert outbox.output.strip() == ""  # nothing was stored for delivery


def test_data_dir_that_is_a_file(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "afile"))
    line = error_line(runner.invoke(app, SEND))
    assert line == (
        f"error: invalid settings: PHONE_ACTIONS_DATA_DIR: {str(tmp_path / 'afile')!r} is a "
        "file, not a folder"
    )


def test_log_path_that_is_a_folder(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PHONE_ACTIONS_LOG_FILE", str(tmp_path))
    line = error_line(runner.invoke(app, SEND))
    assert "PHONE_ACTIONS_LOG_FILE" in line
    assert "folder" in line


@pytest.mark.parametrize("data_dir", ["/proc/phone-actions", "/proc/self", "/sys/kernel"])
def test_data_dir_that_cannot_be_written(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, data_dir: str
) -> None:
    """Root ignores permission bits, so unwritable places are /proc and /sys."""
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", data_dir)
    assert data_dir in error_line(runner.invoke(app, SEND))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process (its files are closed when it exits)."""
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,  # generous: a loaded 2-core CI machine; a hang is the failure
        check=False,
    )


def _mount(args: list[str], target: Path) -> Iterator[Path]:
    target.mkdir(exist_ok=True)
    done = subprocess.run(["mount", *args, str(target)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mount not permitted here: {done.stderr.decode().strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "--lazy", str(target)], check=True)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "ro"
    target.mkdir()
    yield from _mount(["--bind", "-o", "ro", str(target)], target)


@pytest.fixture
def full_dir(tmp_path: Path) -> Iterator[Path]:
    for mounted in _mount(["-t", "tmpfs", "-o", "size=16k", "tmpfs"], tmp_path / "full"):
        with (mounted / "filler").open("wb") as filler:
            try:
                filler.write(b"\0" * 65536)
                filler.flush()
            except OSError:
                pass  # ENOSPC: the file system is full, as wanted
        yield mounted


def test_read_only_data_dir(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, read_only_dir: Path
) -> None:
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(read_only_dir))
    line = error_line(cli(*SEND))
    assert str(read_only_dir) in line
    assert "Read-only" in line or "read-only" in line


def test_full_data_dir(runner: CliRunner, monkeypatch: pytest.MonkeyPatch, full_dir: Path) -> None:
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(full_dir))
    line = error_line(cli(*SEND))
    assert str(full_dir) in line
    assert "full" in line or "space" in line


def test_log_on_a_full_device_is_reported_and_the_report_kept(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/dev/full opens but refuses every write: the message was sent, so the report is
    printed, and the lost log events are named on stderr (the log sink never raises)."""
    monkeypatch.setenv("PHONE_ACTIONS_LOG_FILE", "/dev/full")
    result = cli(*SEND)
    assert "Traceback" not in result.stdout + result.stderr
    assert '"recipient":"+14155552671"' in result.stdout
    assert "/dev/full" in result.stderr
    assert "ENOSPC" in result.stderr or "No space left" in result.stderr


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("127.0.0.1:8080", "not valid JSON"),
        ('["http://x:80"]', "a URL or a path, not a host"),
        ('["bad host!"]', "not a host name"),
        ('["localhost:0"]', "port '0'"),
        ('["[::1"]', "unbalanced brackets"),
    ],
)
def test_bad_sandbox_http_hosts(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("PHONE_ACTIONS_SANDBOX_ALLOW_HTTP_HOSTS", value)
    for command in (SEND, ["plugins"]):
        line = error_line(runner.invoke(app, command))
        assert "PHONE_ACTIONS_SANDBOX_ALLOW_HTTP_HOSTS" in line
        assert says in line


JSON_SETTINGS = {
    "sandbox_allow_http_hosts": 'a JSON list like ["a", "b"]',
    "outbound_allow_hosts": 'a JSON list like ["a", "b"]',
    "log_stream_allow_http_hosts": 'a JSON list like ["a", "b"]',
    "notification_retry_delays": "a JSON list like [1, 2.5]",
    "default_sender_settings": 'a JSON object like {"name": "value"}',
    "default_sender_credentials_env": 'a JSON object like {"name": "value"}',
}


def test_json_settings_are_every_setting_read_as_json() -> None:
    """pydantic-settings decodes these from JSON: a new one joins JSON_SETTINGS (and its test)."""
    source = EnvSettingsSource(Settings)
    read_as_json = {
        name for name, field in Settings.model_fields.items() if source.field_is_complex(field)
    }
    assert read_as_json == set(JSON_SETTINGS)


@pytest.mark.parametrize(("field", "shape"), JSON_SETTINGS.items())
def test_a_json_setting_that_is_not_json_is_one_line_naming_it(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, field: str, shape: str
) -> None:
    variable = f"PHONE_ACTIONS_{field.upper()}"
    monkeypatch.setenv(variable, "[bad")
    for command in (SEND, ["doctor"]):
        assert error_line(runner.invoke(app, command)) == (
            f"error: invalid settings: {variable}: not valid JSON (expected {shape}): "
            "expecting value at character 2"
        )


@pytest.mark.parametrize(("field", "shape"), JSON_SETTINGS.items())
def test_a_json_setting_of_the_wrong_shape_says_the_json_expected(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, field: str, shape: str
) -> None:
    """JSON, but not a list or object: said in JSON's words, not TOML's ("a table")."""
    variable = f"PHONE_ACTIONS_{field.upper()}"
    monkeypatch.setenv(variable, '"x"')
    assert error_line(runner.invoke(app, ["doctor"])) == (
        f"error: invalid settings: {variable}: should be {shape}"
    )


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PHONE_ACTIONS_SANDBOX_ALLOW_HTTP_HOSTS", '["a", 1]', "entry 2: should be text in quotes"),
        (
            "PHONE_ACTIONS_DEFAULT_SENDER_CREDENTIALS_ENV",
            '{"a": 1}',
            '"a": should be text in quotes',
        ),
    ],
)
def test_a_bad_entry_of_a_json_setting_names_the_variable_and_the_entry(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert error_line(runner.invoke(app, ["doctor"])) == (
        f"error: invalid settings: {variable}: {says}"
    )


def test_good_sandbox_http_hosts_are_accepted(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = '["127.0.0.1:8080", "localhost", "[::1]:9000", "fake-sms.test:80"]'
    monkeypatch.setenv("PHONE_ACTIONS_SANDBOX_ALLOW_HTTP_HOSTS", hosts)
    assert runner.invoke(app, SEND).exit_code == 0


def test_tenants_file_that_is_a_folder(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tmp_path))
    assert "PHONE_ACTIONS_TENANTS_FILE" in error_line(runner.invoke(app, SEND))


def test_replay_opens_the_pipeline_the_same_way(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    event = tmp_path / "event.json"
    event.write_text(
        '{"tenant": {"id": "acme"}, "message_options": {"action": "enrollment", '
        '"code": "123456", "message_type": "sms", "recipient": "+14155552671", "text": "x"}}'
    )
    monkeypatch.setenv("PHONE_ACTIONS_DATABASE_URL", "bogus://")
    assert "PHONE_ACTIONS_DATABASE_URL" in error_line(runner.invoke(app, ["replay", str(event)]))


def test_send_reads_the_tenants_default_country(runner: CliRunner) -> None:
    national = ["send", "--tenant", "us", "--to", "203-484-9800", "--code", "123456", "--json"]
    result = runner.invoke(app, national)
    assert result.exit_code == 0, result.output
    assert '"recipient":"+12034849800"' in result.stdout  # not +2034849800 (Egypt)

    national[2] = "acme"  # no default_country: refused, not guessed
    assert error_line(runner.invoke(app, national)).startswith("error: recipient: ")


@pytest.mark.parametrize("to", ["+1415abc2671", "+14155552671 ext. 12"])
def test_send_refuses_numbers_it_would_rewrite(runner: CliRunner, to: str) -> None:
    result = runner.invoke(app, ["send", "--tenant", "acme", "--to", to, "--code", "123456"])
    assert error_line(result).startswith("error: recipient: ")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("notaurl", "must be an http:// or https:// URL with a host"),
        ("ftp://127.0.0.1", "must be an http:// or https:// URL with a host"),
        ("http://127.0.0.1:port", "is not a valid URL (check the host and the port)"),
    ],
)
def test_a_malformed_api_url_is_bad_configuration(
    runner: CliRunner, url: str, problem: str
) -> None:
    """Said before any request, naming the variable, never the value (it may hold a user and
    a password)."""
    env = {"PHONE_ACTIONS_API_URL": url, "PHONE_ACTIONS_API_TOKEN": "t"}
    line = error_line(runner.invoke(app, ["actions", "list"], env=env))
    assert line == f"error: PHONE_ACTIONS_API_URL: {problem} (e.g. http://127.0.0.1:8000)"
