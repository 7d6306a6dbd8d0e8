"""A tenants file means one thing wherever it is read from: a relative action ``script`` is
relative to the file's folder for ``send``, ``doctor`` and ``tenants import`` alike, whatever
the current directory; a script that is not there is named by its absolute path; and a
misspelt tenant id gets the closest one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.tenants import TomlTenantDirectory
from tests.support.stub_server import StubServer

ACTION = """
def on_execute_send_phone_message(event, api):
    api.http.post(event.secrets.SMS_URL, json={})  # handed to a local gateway: delivered
    return {"message_id": "rel-1"}
"""

TENANTS = """
[tenants.rel]
provider = "phone-message-hook"
fallback = "never"

[tenants.rel.provider_settings]
script = "send_sms.py"

[tenants.rel.credentials_env]
SMS_URL = "REL_SMS_URL"

[tenants.acme]
provider = "outbox"
"""


def send(tenant: str) -> list[str]:
    return ["send", "--tenant", tenant, "--to", "+14155552671", "--code", "123456", "--json"]


@pytest.fixture
def gateway() -> Iterator[StubServer]:
    with StubServer() as server:
        server.respond(200, {"id": "rel-1"})
        yield server


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gateway: StubServer) -> Path:
    """``conf/tenants.toml`` with ``send_sms.py`` next to it, run from ``conf``'s parent."""
    monkeypatch.setenv("REL_SMS_URL", f"{gateway.url}/sms")
    allowed = json.dumps([gateway.url.removeprefix("http://")])
    monkeypatch.setenv("PHONE_ACTIONS_SANDBOX_ALLOW_HTTP_HOSTS", allowed)
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "tenants.toml").write_text(TENANTS)
    (folder / "send_sms.py").write_text(ACTION)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", "conf/tenants.toml")
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    for name in ("DATABASE_URL", "LOG_FILE"):
        monkeypatch.delenv(f"PHONE_ACTIONS_{name}", raising=False)
    return folder


def test_a_relative_script_is_relative_to_the_tenants_file(conf: Path) -> None:
    directory = TomlTenantDirectory.from_file(Path("conf/tenants.toml"))
    script = directory.get("rel").provider_settings["script"]
    assert script == str(conf / "send_sms.py")


def test_send_finds_the_script_next_to_the_tenants_file(conf: Path) -> None:
    result = CliRunner().invoke(app, send("rel"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["status"], report["delivered_by"]) == ("delivered", "phone-message-hook")
    assert report["attempts"][0]["message_id"] == "rel-1"  # the script next to the file ran


def test_a_missing_script_is_named_by_its_absolute_path(conf: Path) -> None:
    (conf / "send_sms.py").unlink()
    (conf.parent / "send_sms.py").write_text(ACTION)  # in the cwd: not the one the file means
    result = CliRunner().invoke(app, send("rel"))
    assert result.exit_code == 1, result.output
    [attempt] = json.loads(result.stdout)["attempts"]
    assert attempt["error_code"] == "action_not_found"
    assert f"'{conf / 'send_sms.py'}': No such file or directory" in attempt["error"]


def test_doctor_reports_a_missing_script(conf: Path) -> None:
    (conf / "send_sms.py").unlink()
    result = CliRunner().invoke(app, ["doctor", "--json"])
    assert result.exit_code == 1, result.output
    rows = {row["check"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert rows["tenants"]["status"] == "problem"
    assert rows["tenants"]["detail"] == (
        "conf/tenants.toml: tenants.rel.provider_settings.script: "
        f"'{conf / 'send_sms.py'}': No such file or directory"
    )


def test_doctor_is_content_when_the_script_is_next_to_the_file(conf: Path) -> None:
    result = CliRunner().invoke(app, ["doctor", "--json"])
    rows = {row["check"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert rows["tenants"] == {
        "check": "tenants",
        "status": "ok",
        "detail": "2 in conf/tenants.toml",
    }


def test_tenants_import_refuses_a_missing_script_naming_it(conf: Path) -> None:
    (conf / "send_sms.py").unlink()
    result = CliRunner().invoke(app, ["tenants", "import", "conf/tenants.toml"])
    assert result.exit_code == 2, result.output
    assert (
        f"tenants.rel.provider_settings.script: '{conf / 'send_sms.py'}': No such file"
        in result.stderr
    )
    assert not (conf.parent / "data").exists()  # refused before the database was opened


def test_a_misspelt_tenant_gets_the_closest_id(conf: Path) -> None:
    result = CliRunner().invoke(app, send("acmee"))
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["reason"] == "unknown_tenant"
    assert "no tenant 'acmee' in conf/tenants.toml (did you mean 'acme'?)" in json.dumps(report)
