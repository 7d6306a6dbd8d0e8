"""What docs/cli.md, docs/service.md and docs/examples/tenants.toml say a command prints is
what it prints: each row ``doctor`` shows, the keys of ``providers try --json``, the shape of
``actions list --json``, the command ``make run`` prints to list the outbox, and where the
outbox keeps its messages. Read from the commands' real output or from the code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

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


# -- the tables of docs/cli.md: at most 80 columns, and what the commands print at 80 columns

QUICK_START_TENANTS = """\
[tenants.acme]
friendly_name = "Acme"
message_types = ["sms"]
provider = "outbox"
"""
SEND = "phone-actions send --tenant acme --to +14155552671 --code 123456"
REPLAY_EVENTS = "phone-actions replay --tenant acme " + " ".join(
    f"tests/events/{name}" for name in ("spm_sms_verify_us.json", "cpp_text_verify_au.json")
)
REPLAY_RECORDING = "phone-actions replay tests/recordings/vonage_sms.jsonl --action my_vonage.py"
IMPORT = "phone-actions tenants import docs/examples/tenants.toml"


def fenced_blocks(text: str) -> list[list[str]]:
    """The lines of each fenced block of ``text``."""
    return [
        match.group(1).splitlines()
        for match in re.finditer(r"^```[\w-]*\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    ]


def printed_lines(block: list[str]) -> list[str]:
    """A block's lines but the ``$ `` commands typed (and their ``\\`` continuations)."""
    printed, typing = [], False
    for line in block:
        if line.startswith("$ ") or typing:
            typing = line.endswith("\\")
            continue
        printed.append(line)
    return printed


def example(command: str) -> list[str]:
    """What docs/cli.md shows ``$ command`` printing: its lines up to the next command or the
    end of the block."""
    for block in fenced_blocks(read("docs/cli.md")):
        if f"$ {command}" in block:
            after = block[block.index(f"$ {command}") + 1 :]
            ends = [i for i, line in enumerate(after) if line.startswith("$ ")]
            return after[: min(ends, default=len(after))]
    raise AssertionError(f"docs/cli.md has no example of {command!r}")


def run(runner: CliRunner, command: str, exit_code: int) -> list[str]:
    """``command``'s standard output at 80 columns, lines right-stripped (Rich pads them)."""
    result = runner.invoke(app, command.split()[1:], env={"COLUMNS": "80"})
    assert result.exit_code == exit_code, result.output
    return [line.rstrip() for line in result.stdout.rstrip("\n").splitlines()]


def without_ids(lines: list[str]) -> list[str]:
    """Table rows with message ids and latencies masked: they change at every run."""
    hidden = []
    for line in lines:
        if line.startswith("│"):
            line = re.sub(r"(?<=│ )\d+\.\d +(?=│)", lambda m: "L" * len(m.group()), line)
            line = re.sub(r"\b[0-9a-f]{5,}\b", lambda m: "x" * len(m.group()), line)
        hidden.append(line)
    return hidden


@pytest.fixture
def quick_start(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The Quick start's tenants file (acme, SMS through the outbox), in the current folder
    with the recorded events and the recording the examples name."""
    (tmp_path / "tenants.toml").write_text(QUICK_START_TENANTS)
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tmp_path / "tenants.toml"))
    for folder in ("events", "recordings"):
        (tmp_path / "tests" / folder).mkdir(parents=True)
    for name in ("spm_sms_verify_us.json", "cpp_text_verify_au.json"):
        (tmp_path / "tests/events" / name).write_bytes((ROOT / "tests/events" / name).read_bytes())
    recording = "tests/recordings/vonage_sms.jsonl"
    (tmp_path / recording).write_bytes((ROOT / recording).read_bytes())
    return runner


def test_every_table_and_help_in_cli_md_fits_80_columns() -> None:
    """cli.md: "The help and the tables fit 80 columns". Every block that shows a table or a
    help, with the heading and captions printed around the table."""
    checked, too_wide = [], []
    for block in fenced_blocks(read("docs/cli.md")):
        text = "\n".join(block)
        if not any(corner in text for corner in "┏┌╭") and "\nUsage: " not in f"\n{text}":
            continue
        checked += [line for line in block if line.startswith("$ ")]
        too_wide += [line for line in printed_lines(block) if len(line) > 80]
    assert too_wide == []
    for command in (SEND, f"{SEND} --channel voice", REPLAY_EVENTS, REPLAY_RECORDING, IMPORT):
        assert f"$ {command}" in checked, command
    assert "$ phone-actions doctor" in checked
    assert "$ phone-actions --help" in checked


def test_the_send_examples_are_what_send_prints_at_80_columns(quick_start: CliRunner) -> None:
    assert without_ids(run(quick_start, SEND, 0)) == without_ids(example(SEND))
    voice = f"{SEND} --channel voice"
    assert run(quick_start, voice, 1) == example(voice)


def test_the_replay_examples_are_what_replay_prints_at_80_columns(
    quick_start: CliRunner, tmp_path: Path
) -> None:
    assert run(quick_start, REPLAY_EVENTS, 0) == example(REPLAY_EVENTS)
    # my_vonage.py: the sample action without the line that sends non-ASCII text as unicode
    action = (ROOT / "tenant_actions/vonage_sms.py").read_text("utf-8")
    unicode = '    if not options.text.isascii():\n        form["type"] = "unicode"'
    assert unicode in action
    (tmp_path / "my_vonage.py").write_text(action.replace(unicode, "    pass"))
    assert run(quick_start, REPLAY_RECORDING, 1) == example(REPLAY_RECORDING)


def test_the_tenants_import_example_is_the_real_table(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("ACME_TWILIO_AUTH_TOKEN", "t" * 32)
    command = IMPORT.replace("docs/examples/tenants.toml", str(EXAMPLE_TENANTS))
    assert run(runner, command, 0) == example(IMPORT)


def test_the_outbox_json_example_is_what_outbox_prints(quick_start: CliRunner) -> None:
    """Key for key and value for value, the id and the time masked (digit for digit: the
    format, ``+00:00`` included, is the real one)."""
    command = "phone-actions outbox --tenant acme --last 1 --json"
    run(quick_start, SEND.replace("123456", "481516"), 0)
    (shown,) = example(command)
    (printed,) = run(quick_start, command, 0)

    def masked(line: str) -> dict[str, str]:
        row: dict[str, str] = json.loads(line)
        row["id"] = re.sub(r"[0-9a-f]", "x", row["id"])
        row["created_at"] = re.sub(r"\d", "9", row["created_at"])
        return row

    assert masked(printed) == masked(shown)


def test_doctor_warns_of_a_variable_close_to_a_setting_in_its_documented_row(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A misspelt setting in the process environment is ignored by the settings: doctor says
    so (a warning, exit 0), in the row its table documents; the other commands' variables, the
    test suite's and names close to no setting (credentials) are no typo."""
    for name in ("DATABSE_URL", "TEST_POSTGRES_URL", "API_URL", "API_TOKEN", "ACME_SID"):
        monkeypatch.setenv(f"PHONE_ACTIONS_{name}", "x")
    monkeypatch.setenv("PHONE_ACTIONS_CLI_CONFIG", "/nonexistent.toml")
    result = runner.invoke(app, ["doctor", "--json"])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row for row in rows if row["check"] == "environment"] == [
        {
            "check": "environment",
            "status": "off",
            "detail": "warning: PHONE_ACTIONS_DATABSE_URL is not a setting and is ignored "
            "(did you mean PHONE_ACTIONS_DATABASE_URL?)",
        }
    ]
    doctor = section(read("docs/cli.md"), "## `doctor`")
    assert "| `environment` |" in doctor


# -- the test-action example: its scripts, its secrets file and what it prints

TEST_ACTION = (
    "phone-actions test-action send_sms.py broken.py --event tests/events/spm_sms_verify_us.json"
    " \\\n    --allow-host 127.0.0.1:8080 --secret-file secrets.env"
)


def block_starting(first: str) -> list[str]:
    """The lines of the one fenced block of docs/cli.md whose first line is ``first``."""
    (block,) = [b for b in fenced_blocks(read("docs/cli.md")) if b and b[0] == first]
    return block


def shown_printing(command: str) -> list[str]:
    """What docs/cli.md shows ``$ command`` (several lines, continued with ``\\``) printing,
    up to the next command."""
    typed = command.splitlines()
    for block in fenced_blocks(read("docs/cli.md")):
        for at in range(len(block) - len(typed) + 1):
            if block[at : at + len(typed)] == [f"$ {typed[0]}", *typed[1:]]:
                after = block[at + len(typed) :]
                ends = [i for i, line in enumerate(after) if line.startswith("$ ")]
                return after[: min(ends, default=len(after))]
    raise AssertionError(f"docs/cli.md has no example of {command!r}")


def test_the_test_action_example_is_what_test_action_prints(
    runner: CliRunner, tmp_path: Path
) -> None:
    """docs/cli.md's scripts and secrets file, run against a local gateway answering as the
    example's does (on a free port, not 8080): it prints the example, durations aside. The URL,
    held whole in the secret SMS_URL, is masked as every secret value is."""
    from tests.support.stub_server import StubServer

    for name in ("send_sms.py", "broken.py"):
        # saved as the doc shows it, its first line (the name) included
        (tmp_path / name).write_text("\n".join(block_starting(f"# {name}")) + "\n")
    event = "tests/events/spm_sms_verify_us.json"
    (tmp_path / "tests/events").mkdir(parents=True)
    (tmp_path / event).write_bytes((ROOT / event).read_bytes())
    secrets = "\n".join(block_starting("# secrets.env")) + "\n"
    assert "SMS_URL=http://127.0.0.1:8080/sms" in secrets

    def printed(command: str) -> list[str]:
        """``command`` at 80 columns, against the gateway; durations hidden."""
        args = command.replace(" \\\n   ", "").replace("127.0.0.1:8080", host)
        return [re.sub(r"\d+\.\d+ ms", "T ms", line) for line in run(runner, args, 1)]

    def without_durations(line: str) -> Any:
        return json.loads(re.sub(r'"duration_ms":[\d.]+', '"duration_ms":0', line))

    with StubServer() as gateway:
        gateway.respond(201, {"id": "msg-0001"})
        host = gateway.url.removeprefix("http://")
        (tmp_path / "secrets.env").write_text(secrets.replace("127.0.0.1:8080", host))
        text = printed(TEST_ACTION)
        as_json = printed(f"{TEST_ACTION} --json")
    assert text == [re.sub(r"\d+\.\d+ ms", "T ms", line) for line in shown_printing(TEST_ACTION)]
    assert "  http POST ****** -> 201 (T ms)" in text
    assert [without_durations(line) for line in as_json] == [
        without_durations(line) for line in shown_printing(f"{TEST_ACTION} --json")
    ]


def test_the_docs_say_make_run_keeps_tenants_in_the_database_not_the_example_file(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve`` (``make run``) reads no tenants file: the docs sent a new user to
    ``send --tenant demo``, which read ``tenants.toml`` and was not found. cli.md's command
    works as written, from a folder without a tenants.toml, with the example file."""
    assert "tenants_file" not in read("runtime/cli_service.py")  # serve reads none
    (index_row,) = [line for line in read("docs/index.md").splitlines() if "examples/ten" in line]
    assert "that `make run` uses" not in index_row
    assert "reads none" in index_row
    header = EXAMPLE_TENANTS.read_text("utf-8").split("\n[", 1)[0]
    assert "`serve`, which `make run` runs, never reads one" in " ".join(header.split())
    assert "Tenants of the embedded default" not in header

    intro = read("docs/cli.md").split("\n## ", 1)[0]
    (block,) = [b for b in fenced_blocks(intro) if b[0].startswith("export ")]
    variable, value = block[0].removeprefix("export ").split("=", 1)
    assert (variable, value) == ("PHONE_ACTIONS_TENANTS_FILE", "docs/examples/tenants.toml")
    monkeypatch.delenv("PHONE_ACTIONS_TENANTS_FILE")
    command = block[1].split()[1:]
    missing = runner.invoke(app, command)
    assert missing.exit_code == 2
    assert "tenants file 'tenants.toml' not found" in missing.stderr  # what the doc quotes
    assert "`tenants file 'tenants.toml' not found`" in intro
    monkeypatch.setenv(variable, str(ROOT / value))
    sent = runner.invoke(app, command)
    assert sent.exit_code == 0, sent.output
    assert sent.stdout.startswith("stored sms to +14155552671 by outbox")
