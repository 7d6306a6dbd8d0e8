"""Replay: the committed recordings against the sample actions, a changed action, a provider.

Nothing here reaches the network: a replayed action's HTTP is answered from the recording by
the egress's replay transport, and a provider plugin's by an HTTP tap.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import plugins.recorder as recorder
from runtime import PhoneMessageRequest
from runtime.cli import app
from runtime.cli_replay import PROGRESS_THRESHOLD
from runtime.recording.format import Recording
from runtime.recording.replay import ProviderReplayer, replay_recording
from tests.conftest import PipelineFactory
from tests.recordings.make_recordings import SAMPLES, recorder_plugins
from tests.support.stub_server import StubServer

ROOT = Path(__file__).resolve().parents[1]
RECORDINGS = ROOT / "tests" / "recordings"
ACTIONS = ROOT / "tenant_actions"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(ROOT / "docs/examples/tenants.toml"))
    return CliRunner()


def changed_action(tmp_path: Path, sample: str, old: str, new: str) -> Path:
    source = (ACTIONS / f"{sample}.py").read_text(encoding="utf-8")
    assert old in source
    path = tmp_path / f"{sample}.py"
    path.write_text(source.replace(old, new), encoding="utf-8")
    return path


@pytest.mark.parametrize("sample", SAMPLES)
async def test_each_committed_recording_replays_equal_against_its_action(sample: str) -> None:
    recording = Recording.read(RECORDINGS / f"{sample}.jsonl")
    report = await replay_recording(recording, action=ACTIONS / f"{sample}.py")
    assert report.skipped == 0
    assert len(report.results) == len(recording) > 1
    assert [r.differences for r in report.results] == [[]] * len(recording)
    assert all(r.requests and all(q.served for q in r.requests) for r in report.results)


def test_cli_replay_of_an_unchanged_action_reports_all_equal(cli_env: CliRunner) -> None:
    result = cli_env.invoke(
        app,
        [
            "replay",
            str(RECORDINGS / "vonage_sms.jsonl"),
            "--action",
            str(ACTIONS / "vonage_sms.py"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "all 4 events equal" in result.output
    assert "events differ" not in result.output
    assert result.output.count("│ equal") == 4


def test_cli_replay_of_a_changed_action_shows_the_divergence_and_exits_1(
    cli_env: CliRunner, tmp_path: Path
) -> None:
    script = changed_action(tmp_path, "vonage_sms", '"/sms/json"', '"/sms/v2/json"')
    result = cli_env.invoke(
        app, ["replay", str(RECORDINGS / "vonage_sms.jsonl"), "--action", str(script), "--json"]
    )
    assert result.exit_code == 1, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    events, summary = rows[:-1], rows[-1]["summary"]
    assert summary == {
        "recording": str(RECORDINGS / "vonage_sms.jsonl"),
        "replayed": 4,
        "different": 4,
        "skipped": 0,
    }
    first = events[0]
    assert (first["recorded"], first["replayed"]) == ("ok, handed off", "runtime_error")
    assert (
        "request 1: POST https://vonage-base-url.redacted.invalid/sms/v2/json instead of "
        "POST https://vonage-base-url.redacted.invalid/sms/json (not sent)"
    ) in first["differences"]
    assert first["requests"] == [
        {
            "method": "POST",
            "url": "https://vonage-base-url.redacted.invalid/sms/v2/json",
            "in_recording": False,
        }
    ]


def test_cli_table_names_body_and_log_changes(cli_env: CliRunner, tmp_path: Path) -> None:
    script = changed_action(tmp_path, "country_routing", '"routing "', '"route "')
    result = cli_env.invoke(
        app, ["replay", str(RECORDINGS / "country_routing.jsonl"), "--action", str(script)]
    )
    assert result.exit_code == 1
    assert "4 of 4 events differ" in result.output
    assert "logs, line 1" in result.output
    script = changed_action(tmp_path, "infobip_sms", '"destinations"', '"to_numbers"')
    result = cli_env.invoke(
        app, ["replay", str(RECORDINGS / "infobip_sms.jsonl"), "--action", str(script), "--json"]
    )
    assert result.exit_code == 1
    first = json.loads(result.output.splitlines()[0])
    assert "request 1: body changed: messages" in first["differences"]


async def test_a_request_missing_from_the_recording_is_never_sent(tmp_path: Path) -> None:
    """The recording's own base URL points at a live local server, so a request that differs
    from the recorded one would reach it, were it sent."""
    with StubServer() as live:
        original = (RECORDINGS / "vonage_sms.jsonl").read_text(encoding="utf-8")
        edited = original.replace("https://vonage-base-url.redacted.invalid", live.url)
        path = tmp_path / "live.jsonl"
        path.write_text(edited, encoding="utf-8")
        script = changed_action(tmp_path, "vonage_sms", '"/sms/json"', '"/sms/other"')
        report = await replay_recording(Recording.read(path), action=script)
        assert live.requests == []
        assert not report.ok
        assert all(r.replayed.startswith("runtime_error") for r in report.results)
        # unchanged, the same recording replays equal, still without sending anything
        report = await replay_recording(Recording.read(path), action=ACTIONS / "vonage_sms.py")
        assert report.ok
        assert live.requests == []


def test_cli_progress_bar_on_long_recordings_not_with_json(
    cli_env: CliRunner, tmp_path: Path
) -> None:
    lines = (RECORDINGS / "infobip_sms.jsonl").read_text(encoding="utf-8").splitlines()
    header, first = lines[0], json.loads(lines[1])
    body = [json.dumps(first | {"seq": n}) for n in range(1, PROGRESS_THRESHOLD + 2)]
    path = tmp_path / "long.jsonl"
    path.write_text("\n".join([header, *body]) + "\n", encoding="utf-8")
    result = cli_env.invoke(
        app, ["replay", str(path), "--action", str(ACTIONS / "infobip_sms.py")], color=False
    )
    assert result.exit_code == 0, result.output
    assert f"all {PROGRESS_THRESHOLD + 1} events equal" in result.output
    result = cli_env.invoke(
        app, ["replay", str(path), "--action", str(ACTIONS / "infobip_sms.py"), "--json"]
    )
    assert result.exit_code == 0
    assert all(line.startswith("{") for line in result.output.splitlines())


def test_cli_replay_input_errors_exit_2(cli_env: CliRunner, tmp_path: Path) -> None:
    recording = str(RECORDINGS / "vonage_sms.jsonl")
    event = str(ACTIONS / "events" / "vonage_sms.json")
    for args in (
        [recording],  # a recording needs --action or --provider
        [recording, "--action", "x.py", "--provider", "mitto"],
        [event, "--action", str(ACTIONS / "vonage_sms.py")],  # an event file is no recording
        [recording, "--action", str(tmp_path / "missing.py")],
        [recording, "--provider", "no-such-provider"],
    ):
        result = cli_env.invoke(app, ["replay", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output
    broken = tmp_path / "broken.jsonl"
    shutil.copyfile(recording, broken)
    with broken.open("a") as handle:
        handle.write('{"type": "attempt", "seq": "x"}\n')
    result = cli_env.invoke(app, ["replay", str(broken), "--action", "x.py"])
    assert result.exit_code == 2
    assert "line 6" in result.output


# -- provider plugins --------------------------------------------------------------------------


async def record_mitto(make_pipeline: PipelineFactory) -> Path:
    with StubServer() as stub:
        pipeline = make_pipeline(
            {
                "acme": {
                    "provider": "mitto",
                    "provider_settings": {"sender": "AcmeOTP", "base_url": stub.url},
                    "credentials_env": {"api_key": "ACME_MITTO_KEY"},
                    "fallback": "never",
                    "record": True,
                    "record_keep": [],
                }
            },
            plugins=recorder_plugins(),
            environ={"ACME_MITTO_KEY": "mitto-key-0123456789"},
        )
        answers: list[tuple[int, dict[str, Any]]] = [
            (200, {"id": "m-1", "responseCode": 0, "responseText": "OK"}),
            (200, {"responseCode": 3, "responseText": "Invalid number"}),
            (503, {"responseText": "down"}),
        ]
        for n, (status, body) in enumerate(answers):
            stub.respond(status, body)
            request = PhoneMessageRequest.create(
                tenant="acme", recipient=f"+44791112345{n}", code=f"55123{n}"
            )
            await pipeline.deliver(request)
    assert recorder.flush(), "the recorder did not catch up"  # it writes on its own thread
    [path] = (pipeline.settings.resolved_recordings_dir / "acme").iterdir()
    return path


async def test_provider_replay_is_equal_then_shows_a_changed_plugin(
    make_pipeline: PipelineFactory,
) -> None:
    from plugins.mitto import MittoProvider

    path = await record_mitto(make_pipeline)
    recording = Recording.read(path)
    assert recording.attempts[0].provider_settings["base_url"].startswith("http://127.0.0.1")
    provider = MittoProvider()
    report = await replay_recording(recording, provider=provider)
    assert [r.replayed for r in report.results] == [
        "delivered",
        "failed (3)",
        "failed (503)",
    ]
    assert report.ok, [r.differences for r in report.results]

    class Changed(MittoProvider):
        def build_request(self, message, config, credentials):  # type: ignore[no-untyped-def]
            request = super().build_request(message, config, credentials)
            return type(request).json(request.url, {"to": "0", "text": message.text})

    replayer = ProviderReplayer(Changed())
    result = await replayer.replay(recording.attempts[0])
    assert result.differences == ["request 1: body changed: from, to"]


def test_cli_provider_replay(
    cli_env: CliRunner, make_pipeline: PipelineFactory, tmp_path: Path
) -> None:
    import asyncio

    path = asyncio.run(record_mitto(make_pipeline))
    result = cli_env.invoke(app, ["replay", str(path), "--provider", "mitto"])
    assert result.exit_code == 0, result.output
    assert "all 3 events equal" in result.output
    result = cli_env.invoke(app, ["replay", str(path), "--provider", "outbox"])
    assert result.exit_code == 1, "a replay that compared nothing proves nothing"
    assert "none of its 3 attempts is for provider outbox" in result.output
    assert "nothing compared" in result.output


async def test_concurrent_replay_keeps_each_events_exchanges_and_the_order() -> None:
    """Several events at once, each in its own worker: every event is answered from its own
    recorded exchanges (a mix-up would show as a difference), and the report keeps the
    recording's order whatever finished first."""
    base = Recording.read(RECORDINGS / "vonage_sms.jsonl")
    attempts = [
        a.model_copy(update={"seq": n + 1})
        for n, a in enumerate(base.attempts[i % len(base.attempts)] for i in range(13))
    ]
    recording = Recording(path="<13 events>", header=base.header, attempts=attempts)
    one_by_one = await replay_recording(recording, action=ACTIONS / "vonage_sms.py", concurrency=1)
    at_once = await replay_recording(recording, action=ACTIONS / "vonage_sms.py", concurrency=3)
    assert one_by_one.ok
    assert at_once.ok
    assert [r.record.seq for r in at_once.results] == list(range(1, 14))
    assert [r.replayed for r in at_once.results] == [r.replayed for r in one_by_one.results]
    assert [[q.url for q in r.requests] for r in at_once.results] == [
        [q.url for q in r.requests] for r in one_by_one.results
    ]


def test_cli_replay_jobs(cli_env: CliRunner) -> None:
    args = ["replay", str(RECORDINGS / "vonage_sms.jsonl"), "--action"]
    args.append(str(ACTIONS / "vonage_sms.py"))
    result = cli_env.invoke(app, [*args, "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert "all 4 events equal" in result.output
    refused = cli_env.invoke(app, [*args, "--jobs", "0"])
    assert refused.exit_code == 2
    assert "--jobs" in refused.output
