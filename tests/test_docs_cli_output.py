"""What docs/cli.md, docs/service.md and docs/examples/tenants.toml say a command prints is
what it prints: each row ``doctor`` shows, the keys of ``providers try --json``, the shape of
``actions list --json``, the command ``make run`` prints to list the outbox, and where the
outbox keeps its messages. Read from the commands' real output or from the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_TENANTS = ROOT / "docs" / "examples" / "tenants.toml"


def read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """``text`` from ``heading`` to the next heading of its level or higher."""
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n")
    ends = [m.start() for m in re.finditer(rf"\n#{{1,{len(level)}}} ", text) if m.start() > start]
    return text[start : min(ends, default=len(text))]


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(EXAMPLE_TENANTS))
    for name in ("DATABASE_URL", "LOG_FILE", "DEFAULT_SENDER"):
        monkeypatch.delenv(f"PHONE_ACTIONS_{name}", raising=False)
    return CliRunner()


def test_every_row_doctor_prints_is_in_its_table_and_its_example(runner: CliRunner) -> None:
    result = runner.invoke(app, ["doctor", "--json"])
    printed = [json.loads(line)["check"] for line in result.stdout.splitlines()]
    assert {"default sender", "log file", "tenants", "data folder"} <= set(printed), printed
    doctor = section(read("docs/cli.md"), "## `doctor`")
    rows = [line for line in doctor.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}
    documented |= {"sandbox layers"}  # the row a zygote that cannot start gives, named in one
    assert [name for name in printed if name not in documented] == []
    example = doctor[doctor.index("$ phone-actions doctor") :]
    shown = {line.split("│")[1].strip() for line in example.splitlines() if line.startswith("│")}
    assert [n for n in printed if n not in shown and n != "sandbox layers"] == []


def test_providers_try_json_keys_are_documented(runner: CliRunner) -> None:
    result = runner.invoke(app, ["providers", "try", "outbox", "--to", "+14155552671", "--json"])
    assert result.exit_code == 0, result.output
    keys = set(json.loads(result.stdout))
    assert {"provider", "channel", "provider_status"} <= keys
    (row,) = [
        line for line in read("docs/cli.md").splitlines() if "Print one JSON object: `" in line
    ]
    assert [key for key in sorted(keys) if f"`{key}`" not in row] == []


def test_actions_list_json_is_documented_as_the_array_it_prints() -> None:
    """``actions list --json`` gathers every page into one array (runtime/cli_actions.py; run
    against the app by tests/api/test_cli_actions.py): the docs must not promise the API's
    page object."""
    source = read("runtime/cli_actions.py")
    listing = source[source.index('@actions_app.command("list")') :]
    listing = listing[: listing.index("@actions_app.command(", 1)]
    assert "typer.echo(json.dumps(rows" in listing  # the array of every action
    actions = " ".join(section(read("docs/cli.md"), "## `actions`").split())
    assert "`actions list` and `actions versions` print one JSON array" in actions
    assert "not the API's page `{actions, total, page, per_page}`" in actions


def test_the_outbox_command_make_run_prints_is_the_one_documented() -> None:
    source = read("runtime/cli_service.py")
    assert 'f"Then list it: {_this_command()} outbox --tenant {DEMO_TENANT}"' in source
    assert re.search(r"^BIN := \$\(VENV\)/bin$", read("Makefile"), re.MULTILINE)
    assert re.search(r"^VENV := \.venv$", read("Makefile"), re.MULTILINE)
    assert "`Then list it: .venv/bin/phone-actions outbox --tenant demo`" in read("docs/service.md")
    assert "prints says `phone-actions outbox`" not in read("docs/service.md")


def test_the_example_tenants_file_names_the_outboxs_database() -> None:
    """The outbox keeps its messages in the service's database (plugins/outbox.py is given
    ``resolved_database_url``): by default the SQLite file in the data folder."""
    default = Settings(_env_file=None, data_dir=Path("data")).resolved_database_url
    file = default.removeprefix("sqlite:///")
    assert file == "data/phone-actions.sqlite3"
    text = EXAMPLE_TENANTS.read_text("utf-8")
    lines = text.splitlines()
    (at,) = [i for i, line in enumerate(lines) if "the default sender: stores messages" in line]
    assert file in " ".join(lines[at : at + 2])
    assert "outbox.sqlite3" not in text
