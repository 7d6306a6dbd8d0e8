"""``make run``: its command serves on SQLite and the outbox, creates the demo tenant, prints
a token and a curl command that really sends a code into the outbox, and stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from plugins.outbox import OutboxProvider
from tests.api.processes import READY, REPO, ServiceProcess


def run_command() -> list[str]:
    """The recipe of ``make run`` (without installing), with PORT=0: a free port."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shown = subprocess.run(
        ["make", "-s", "-n", "-o", ".venv/.installed", "run", "PORT=0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    [line] = shown.splitlines()
    return shlex.split(line)


def send(curl_line: str) -> dict[str, object]:
    """Run the printed curl command as printed (httpx stands in when curl is missing)."""
    args = shlex.split(curl_line)
    if shutil.which("curl"):
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
        return dict(httpx.Response(200, content=done.stdout).json())
    url = next(a for a in args if a.startswith("http"))
    headers = dict(h.split(": ", 1) for h in args[args.index("-H") + 1 :: 2][:2])
    return dict(httpx.post(url, content=args[-1], headers=headers, timeout=60).json())


def test_make_run_serves_the_demo_and_its_curl_fills_the_outbox(tmp_path: Path) -> None:
    data = tmp_path / "data"
    command = run_command()
    assert command[1:3] == ["serve", "--demo"]
    service = ServiceProcess(command, data)
    try:
        curl = service.wait_for(re.compile(r"^curl .*")).group(0)
        list_it = service.wait_for(re.compile(r"^Then list it: (.*)$")).group(1)
        url = service.wait_for(READY).group(1)
        assert url in curl
        report = send(curl)
        assert report["status"] == "stored", report
        assert report["tenant"] == "demo"
        code = service.stop(signal.SIGINT)
    finally:
        service.kill()
    assert code == 0, service.output()
    assert "Traceback" not in service.output()
    outbox = OutboxProvider(f"sqlite:///{data / 'phone-actions.sqlite3'}")
    [message] = outbox.messages("demo")
    assert "123456" in message.text
    # the printed command to list it works as printed, in a shell without the venv on PATH
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    listed = subprocess.run(
        shlex.split(list_it),
        cwd=REPO,
        env={**os.environ, "PATH": path, "PHONE_ACTIONS_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, (list_it, listed.stderr)
    assert "+14155552671" in listed.stdout or "4155552671" in listed.stdout, listed.stdout
    # a second start finds the tenant and keeps it
    again = ServiceProcess(command, data)
    try:
        again.wait_for(re.compile(r"Tenant 'demo' \(already there\)"))
        again.wait_for(READY)
        assert again.stop(signal.SIGINT) == 0
    finally:
        again.kill()
