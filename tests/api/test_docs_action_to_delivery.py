"""docs/cli.md's steps from ``actions create ... --deploy`` to deliveries, run as written: a
deployed action delivers nothing until it is bound to its trigger and the phone factor selects
it; after the two API calls the doc shows (its curl commands, read from the page), the next
code runs the action."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from tests.api.conftest import Api, point_cli_at

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "def on_execute_send_phone_message(event, api):\n    return {'sent': True}\n"


def curl_calls(text: str) -> list[tuple[str, str, str]]:
    """(method, path, body) of each ``curl`` command of the section's bash block."""
    (block,) = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    commands = [c for c in block.replace("\\\n", " ").splitlines() if c.startswith("curl ")]
    calls = []
    for command in commands:
        words = shlex.split(command.replace("$PHONE_ACTIONS_API_URL", ""))
        method = words[words.index("-X") + 1]
        path = next(w for w in words if w.startswith("/api/"))
        calls.append((method, path, words[words.index("-d") + 1]))
    return calls


def send(api: Api) -> Any:
    headers = api.auth(api.tenant_b, "create:phone_messages")
    body = {"to": "+14155552671", "code": "123456"}
    response = api.client.post("/api/v2/phone/messages", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_documented_bind_and_select_calls_put_the_action_in_the_path(
    api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = doc[doc.index("### From a deployed action to deliveries") :]
    section = section[: section.index("\n## ")]
    token = api.token(api.tenant_b, "create:actions", "read:actions")

    point_cli_at(api, monkeypatch, token)
    script = tmp_path / "send_sms.py"
    script.write_text(SCRIPT)
    created = CliRunner().invoke(
        app, ["actions", "create", "my-sms", "--code", str(script), "--deploy"]
    )
    assert created.exit_code == 0, created.output
    assert "phone-message-hook" not in send(api)["path"]  # deployed, not in the path

    calls = curl_calls(section)
    assert [(method, path) for method, path, _ in calls] == [
        ("PATCH", "/api/v2/actions/triggers/send-phone-message/bindings"),
        ("PUT", "/api/v2/guardian/factors/phone/selected-provider"),
    ]
    scopes = re.findall(r"`(update:\w+)`", section)
    assert scopes == ["update:actions", "update:guardian_factors"]
    headers = {**api.auth(api.tenant_b, *scopes), "Content-Type": "application/json"}
    for method, path, body in calls:
        answer = api.client.request(method, path, content=body, headers=headers)
        assert answer.status_code == 200, answer.text

    report = send(api)
    # the action ran first (it sends nothing itself, so the report says nothing_sent)
    assert report["path"][0] == "phone-message-hook", report
    assert "`delivered_by` is `phone-message-hook`" in " ".join(section.split())
