"""docs/verify.md's "Trying it locally", run as written against the app: the enrollment's
code is read with the documented ``phone-actions outbox`` command, and confirms it."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.templates import DEFAULT_TEMPLATES
from tests.api.conftest import Api

ROOT = Path(__file__).resolve().parents[2]


def section() -> str:
    text = (ROOT / "docs" / "verify.md").read_text(encoding="utf-8")
    start = text.index("## Trying it locally")
    return text[start : text.index("\n## ", start + 1)]


def commands() -> list[list[str]]:
    (block,) = re.findall(r"```bash\n(.*?)```", section(), re.DOTALL)
    return [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line]


def call(api: Api, words: list[str], token: str, **values: str) -> tuple[int, dict[str, object]]:
    """A documented ``curl -X METHOD URL -H ... -d BODY``, through the in-process client."""
    method = words[words.index("-X") + 1]
    path = words[words.index("-X") + 2].removeprefix("http://127.0.0.1:8000")
    body = words[words.index("-d") + 1]
    for name, value in values.items():
        path, body = path.replace(name, value), body.replace(name, value)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    response = api.client.request(method, path, content=body, headers=headers)
    return response.status_code, response.json()


def test_the_documented_local_enrollment_reads_its_code_from_the_outbox(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    enroll, outbox, confirm = commands()
    assert (enroll[0], outbox[0], confirm[0]) == ("curl", ".venv/bin/phone-actions", "curl")
    token = api.token(api.tenant_a, "create:phone_enrollments")

    status, made = call(api, enroll, token)
    assert status == 201, made
    assert str(made["id"]).startswith("pen_")
    assert made["delivery"]["status"] == "stored"  # type: ignore[index]

    monkeypatch.setenv("PHONE_ACTIONS_DATABASE_URL", api.settings.resolved_database_url)
    args = outbox[1:]
    assert args[: args.index("--tenant") + 2] == ["outbox", "--tenant", "demo"]
    args[args.index("--tenant") + 1] = api.tenant_a
    printed = CliRunner().invoke(app, args)
    assert printed.exit_code == 0, printed.output
    (line,) = printed.stdout.splitlines()
    found = re.match(r"(\d{6}) is your verification code", json.loads(line)["text"])
    assert found, line

    status, confirmed = call(
        api, confirm, token, ENROLLMENT_ID=str(made["id"]), CODE=found.group(1)
    )
    assert (status, confirmed["status"]) == (200, "confirmed")


def test_the_documented_outbox_text_is_the_enrollment_template() -> None:
    shown = re.search(r'`"text":"(.*?)"`', " ".join(section().split()))
    assert shown
    template = DEFAULT_TEMPLATES[("sms", "enrollment")]
    expected = template.replace("{{ code }}", "481516").replace(
        "{{ tenant.friendly_name }}", "Demo"
    )
    assert shown.group(1) == expected
