"""``phone-actions serve`` as a real process on 127.0.0.1, and ``tenants create`` / ``token
create``: the commands an operator runs."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from runtime.api.tokens import SigningKeys
from runtime.cli import app
from tests.api.conftest import api_settings, new_tenant
from tests.api.processes import READY, ServiceProcess

PHONE_ACTIONS = str(Path(sys.executable).with_name("phone-actions"))


METRICS_TOKEN = "m" * 24


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_healthz_and_stops_cleanly(tmp_path: Path, signum: int) -> None:
    service = ServiceProcess(
        [PHONE_ACTIONS, "serve", "--port", "0"],
        tmp_path / "data",
        PHONE_ACTIONS_METRICS_TOKEN=METRICS_TOKEN,
    )
    try:
        url = service.wait_for(READY).group(1)
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/healthz", timeout=30).json() == {"status": "ok"}
        docs = httpx.get(f"{url}/api/v2/openapi.json", timeout=30)
        assert docs.json()["info"]["title"] == "phone-actions Management API"
        # the start-up heap is out of the collector's full passes (docs/operations.md)
        auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        metrics = httpx.get(f"{url}/metrics", headers=auth, timeout=30).text
        frozen = re.search(r"^phone_actions_heap_frozen_objects (\S+)$", metrics, re.MULTILINE)
        assert frozen is not None, metrics
        assert float(frozen.group(1)) > 50_000
        code = service.stop(signum)
    finally:
        service.kill()
    assert code == 0, service.output()
    assert "phone-actions: stopped" in service.output()
    assert "Traceback" not in service.output()


def test_serve_with_an_unusable_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    service = ServiceProcess(
        [PHONE_ACTIONS, "serve", "--port", "0"],
        tmp_path / "data",
        PHONE_ACTIONS_DATABASE_URL="nosuchdriver://nowhere/db",
    )
    try:
        code = service.process.wait(timeout=120)
        service.stop()
    finally:
        service.kill()
    assert code == 2, service.output()
    errors = [line for name, line in service.seen if name == "err" and line.startswith("error")]
    assert errors, service.output()
    assert "PHONE_ACTIONS_DATABASE_URL" in errors[0], service.output()
    assert "Traceback" not in service.output()


def test_serve_on_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        result = CliRunner().invoke(
            app, ["serve", "--port", str(port)], env={"PHONE_ACTIONS_DATA_DIR": str(tmp_path)}
        )
    finally:
        taken.close()
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_tenants_create_then_token_create(tmp_path: Path) -> None:
    env = {"PHONE_ACTIONS_DATA_DIR": str(tmp_path / "data"), "PHONE_ACTIONS_DATABASE_URL": ""}
    runner = CliRunner()
    tenant = new_tenant()
    created = runner.invoke(app, ["tenants", "create", tenant, "--friendly-name", "Acme"], env=env)
    assert created.exit_code == 0, created.output
    again = runner.invoke(app, ["tenants", "create", tenant], env=env)
    assert again.exit_code == 2
    assert "Traceback" not in again.output
    issued = runner.invoke(
        app,
        ["token", "create", "--tenant", tenant, "--scope", "read:actions create:actions"],
        env=env,
    )
    assert issued.exit_code == 0, issued.output
    token = issued.output.strip()
    keys = SigningKeys.from_settings(api_settings(tmp_path / "data"))
    claims = keys.verify(token)
    assert claims.tenant == tenant
    assert claims.scopes == {"read:actions", "create:actions"}


def test_token_create_refuses_unknown_scopes_and_tenants(tmp_path: Path) -> None:
    env = {"PHONE_ACTIONS_DATA_DIR": str(tmp_path / "data"), "PHONE_ACTIONS_DATABASE_URL": ""}
    runner = CliRunner()
    unknown = runner.invoke(
        app, ["token", "create", "--tenant", "x", "--scope", "read:users"], env=env
    )
    assert unknown.exit_code == 2
    assert re.search(r"--scope: unknown scope 'read:users'", unknown.output)
    missing = runner.invoke(
        app, ["token", "create", "--tenant", "nobody", "--scope", "read:actions"], env=env
    )
    assert missing.exit_code == 2
    assert "Traceback" not in missing.output
