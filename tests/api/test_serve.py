"""``phone-actions serve`` as a real process on 127.0.0.1, and ``tenants create`` / ``token
create``: the commands an operator runs."""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from runtime.api.tokens import SigningKeys
from runtime.cli import app
from tests.api.conftest import api_settings, new_tenant
from tests.api.processes import READY, ServiceProcess
from tests.support.stub_server import RecordedRequest, StubServer

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


@pytest.mark.parametrize("asked", [1, 2], ids=["once", "twice"])
def test_a_signal_while_the_last_deliveries_drain_does_not_cut_them_unless_repeated(
    tmp_path: Path, asked: int
) -> None:
    """SIGTERM then SIGINT stop the server at once (uvicorn's force exit); a delivery still at
    its provider then drains with the pipeline. One more SIGTERM meanwhile (an impatient
    supervisor) must not kill the process: the delivery ends and its event is written. Two
    more are the operator's call: it stops at once."""
    arrived, release = threading.Event(), threading.Event()

    def twilio(_request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        arrived.set()
        release.wait(60)
        return 201, {"sid": "SM" + "0" * 32, "status": "queued"}, {}

    data = tmp_path / "data"
    with StubServer() as fake:
        fake.respond_with(twilio)
        tenants = tmp_path / "tenants.toml"
        tenants.write_text(
            '[tenants.acme]\nprovider = "twilio"\n'
            '[tenants.acme.provider_settings]\nfrom_number = "+15017122661"\n'
            f'base_url = "{fake.url}"\n'
            '[tenants.acme.credentials_env]\naccount_sid = "ACME_SID"\nauth_token = "ACME_TOKEN"\n'
        )
        env = {
            "PHONE_ACTIONS_DATA_DIR": str(data),
            "PHONE_ACTIONS_DATABASE_URL": "",
            "ACME_SID": "AC" + "0" * 32,
            "ACME_TOKEN": "t" * 32,
        }
        runner = CliRunner()
        imported = runner.invoke(app, ["tenants", "import", str(tenants)], env=env)
        assert imported.exit_code == 0, imported.output
        issued = runner.invoke(
            app,
            ["token", "create", "--tenant", "acme", "--scope", "create:phone_messages"],
            env=env,
        )
        assert issued.exit_code == 0, issued.output
        auth = {"Authorization": f"Bearer {issued.output.strip()}"}
        service = ServiceProcess(
            [PHONE_ACTIONS, "serve", "--port", "0", "--log-level", "info"], data
        )
        try:
            url = service.wait_for(READY).group(1)
            body = {"to": "+14155552671", "code": "246810"}
            sending = threading.Thread(
                target=lambda: httpx.post(
                    f"{url}/api/v2/phone/messages", json=body, headers=auth, timeout=60
                ),
                daemon=True,
            )
            sending.start()
            assert arrived.wait(60)  # the delivery is at its provider
            service.process.send_signal(signal.SIGTERM)
            service.wait_for(re.compile("Waiting for connections to close"))
            service.process.send_signal(signal.SIGINT)  # uvicorn's force exit: serve returns
            service.wait_for(re.compile("stopped serving; finishing the deliveries"))
            service.process.send_signal(signal.SIGTERM)  # while the pipeline drains
            service.wait_for(re.compile("send the signal again to stop at once"))
            if asked == 2:
                service.process.send_signal(signal.SIGTERM)
                code = service.process.wait(timeout=60)
            else:
                release.set()
                service.wait_for(re.compile("phone-actions: stopped$"))
                code = service.process.wait(timeout=60)
        finally:
            release.set()
            service.kill()
    if asked == 2:
        assert code == -signal.SIGTERM, service.output()
        return
    assert code == 0, service.output()
    events = [json.loads(line) for line in (data / "events.jsonl").read_text().splitlines()]
    assert [e["details"]["status"] for e in events] == ["delivered"], service.output()
