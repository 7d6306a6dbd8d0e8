"""``phone-actions replay`` of recordings as a CI job runs it: several recordings at once, a
replay that compared nothing fails, and each kind of wrong file gets its own one-line error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from runtime.cli import app

ROOT = Path(__file__).resolve().parents[1]
RECORDINGS = ROOT / "tests" / "recordings"
VONAGE_ACTION = ROOT / "tenant_actions" / "vonage_sms.py"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(ROOT / "docs/examples/tenants.toml"))
    return CliRunner()


def lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_several_recordings_are_each_replayed_and_summarised(
    runner: CliRunner, tmp_path: Path
) -> None:
    first, second = tmp_path / "monday.jsonl", tmp_path / "tuesday.jsonl"
    shutil.copy(RECORDINGS / "vonage_sms.jsonl", first)
    shutil.copy(RECORDINGS / "vonage_sms.jsonl", second)
    result = runner.invoke(
        app, ["replay", str(first), str(second), "--action", str(VONAGE_ACTION), "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = lines(result.output)
    summaries = [row["summary"] for row in rows if "summary" in row]
    assert summaries == [
        {"recording": str(first), "replayed": 4, "different": 0, "skipped": 0},
        {"recording": str(second), "replayed": 4, "different": 0, "skipped": 0},
    ]
    events = [row for row in rows if "summary" not in row]
    assert [row["recording"] for row in events] == [str(first)] * 4 + [str(second)] * 4


def test_one_differing_recording_among_several_exits_1_and_tables_name_each(
    runner: CliRunner,
) -> None:
    vonage, infobip = RECORDINGS / "vonage_sms.jsonl", RECORDINGS / "infobip_sms.jsonl"
    result = runner.invoke(
        app, ["replay", str(vonage), str(infobip), "--action", str(VONAGE_ACTION)]
    )
    assert result.exit_code == 1, result.output
    assert f"replay of {vonage} against" in result.output.replace("\n", "")
    assert f"replay of {infobip} against" in result.output.replace("\n", "")
    assert "all 4 events equal" in result.output
    assert "3 of 3 events differ" in result.output


def test_a_replay_that_compared_nothing_exits_1_and_says_so(runner: CliRunner) -> None:
    recording = RECORDINGS / "vonage_sms.jsonl"
    result = runner.invoke(app, ["replay", str(recording), "--provider", "outbox", "--json"])
    assert result.exit_code == 1, result.output
    [summary] = [row["summary"] for row in lines(result.output) if "summary" in row]
    assert summary == {"recording": str(recording), "replayed": 0, "different": 0, "skipped": 4}
    assert f"nothing compared in {recording}" in result.output.replace("\n", "")


def test_a_replay_that_compared_nothing_says_so_once_as_cli_md_does(runner: CliRunner) -> None:
    """Without --json: one line, the one docs/cli.md quotes (``nothing compared in FILE``), not
    a second wording of it (``FILE: nothing compared, 4 skipped (not for this target)``)."""
    recording = RECORDINGS / "vonage_sms.jsonl"
    result = runner.invoke(
        app, ["replay", str(recording), "--provider", "outbox"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 1, result.output
    assert result.stdout.strip().splitlines() == [
        f"nothing compared in {recording}: none of its 4 attempts is for provider outbox"
    ]
    assert result.stderr == ""
    cli_md = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert "says `nothing compared in FILE: none of its N attempts is for" in " ".join(
        cli_md.split()
    )


def test_a_one_event_recording_is_said_in_the_singular(runner: CliRunner, tmp_path: Path) -> None:
    """Not ``all 1 events equal``."""
    one = tmp_path / "one.jsonl"
    header, first = (RECORDINGS / "infobip_sms.jsonl").read_text(encoding="utf-8").splitlines()[:2]
    one.write_text(f"{header}\n{first}\n", encoding="utf-8")
    action = ROOT / "tenant_actions" / "infobip_sms.py"
    result = runner.invoke(app, ["replay", str(one), "--action", str(action)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "the 1 event is equal"


@pytest.mark.parametrize(
    ("replayed", "changed", "skipped", "said"),
    [
        (1, 0, 0, "the 1 event is equal"),
        (1, 1, 0, "the 1 event differs"),
        (4, 0, 0, "all 4 events equal"),
        (4, 1, 0, "1 of 4 events differ"),
        (3, 0, 1, "all 3 events equal, 1 attempt skipped (not for provider mitto)"),
        (3, 3, 2, "3 of 3 events differ, 2 attempts skipped (not for provider mitto)"),
    ],
)
def test_the_verdict_line_counts_in_words(
    replayed: int, changed: int, skipped: int, said: str
) -> None:
    from types import SimpleNamespace

    from rich.text import Text

    from runtime.cli_replay import _verdict
    from runtime.recording.replay.report import ReplayReport

    results: list[Any] = [SimpleNamespace(equal=i >= changed) for i in range(replayed)]
    report = ReplayReport(source="r.jsonl", results=results, skipped=skipped)
    assert Text.from_markup(_verdict(report, "provider mitto")).plain == said


def test_missing_file_and_file_without_header_get_different_errors(
    runner: CliRunner, tmp_path: Path
) -> None:
    missing = tmp_path / "gone.jsonl"
    result = runner.invoke(app, ["replay", str(missing), "--action", str(VONAGE_ACTION)])
    assert result.exit_code == 2
    assert result.output.strip().endswith(f"{missing}: no such file")

    headless = tmp_path / "headless.jsonl"
    attempts = (RECORDINGS / "vonage_sms.jsonl").read_text(encoding="utf-8").splitlines()[1:]
    headless.write_text("\n".join(attempts) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["replay", str(headless), "--action", str(VONAGE_ACTION)])
    assert result.exit_code == 2
    assert f"{headless}: not a recording: its first line is not a recording header" in (
        result.output.replace("\n", "")
    )
    assert "Traceback" not in result.output


def test_a_recording_without_a_target_is_named(runner: CliRunner) -> None:
    recording = RECORDINGS / "vonage_sms.jsonl"
    result = runner.invoke(app, ["replay", str(recording)])
    assert result.exit_code == 2
    assert (
        f"{recording} is a recording: replay it with --action SCRIPT or --provider NAME"
        in result.output.replace("\n", "")
    )


def test_an_event_file_given_as_a_recording_is_not_a_recording(runner: CliRunner) -> None:
    event = ROOT / "tests" / "events" / "spm_sms_verify_us.json"
    result = runner.invoke(app, ["replay", str(event), "--provider", "outbox"])
    assert result.exit_code == 2
    assert "not a recording" in result.output


def test_an_empty_tenant_is_refused_not_taken_for_no_tenant(runner: CliRunner) -> None:
    """``--tenant ''`` delivered as the event's own tenant; it is one line naming the option,
    exit 2, and nothing is delivered."""
    event = ROOT / "tests" / "events" / "spm_sms_verify_us.json"
    result = runner.invoke(app, ["replay", "--tenant", "", str(event), "--json"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: --tenant: must not be empty (without it, each event's tenant.id)"
    ]
