"""SIGTERM drains, SIGKILL loses nothing that was reported: a child process sends a burst of
codes through a real pipeline (outbox, idempotency keys, JSON Lines log) and is signalled
mid-burst; then the outbox, the keys and the log file are checked against what it reported."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import pytest

from runtime import PhoneMessageRequest
from runtime.delivery import Pipeline
from runtime.settings import Settings
from runtime.tenants import TomlTenantDirectory
from tests.support.stub_server import Body, RecordedRequest, StubServer

REPO = Path(__file__).resolve().parent.parent
BURST = 3000
LANES = 20


def start_burst(data_dir: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.support.burst", str(data_dir), str(BURST), str(LANES)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


def reports_until(stream: IO[str], count: int) -> list[list[str]]:
    """Read report lines until ``count`` were printed (the child is mid-burst by then)."""
    lines: list[list[str]] = []
    while len(lines) < count:
        line = stream.readline()
        assert line, "the child ended early"
        lines.append(line.split())
    return lines


def log_events(data_dir: Path) -> list[dict[str, object]]:
    text = (data_dir / "events.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]  # every line parses


def delivery_ids(events: list[dict[str, object]]) -> list[str]:
    return [e["details"]["delivery_id"] for e in events]  # type: ignore[index]


def outbox_count(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "phone-actions.sqlite3") as db:
        (count,) = db.execute("SELECT count(*) FROM outbox_messages").fetchone()
    return int(count)


def pending_keys(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "phone-actions.sqlite3") as db:
        rows = db.execute("SELECT key FROM idempotency_records WHERE report IS NULL").fetchall()
    return [key for (key,) in rows]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_mid_burst_drains_and_accounts_for_every_request(
    tmp_path: Path, signum: int
) -> None:
    child = start_burst(tmp_path)
    assert child.stdout is not None
    seen = reports_until(child.stdout, 50)
    child.send_signal(signum)
    rest = child.stdout.read()  # not communicate(): it would skip what readline() buffered
    assert child.wait(timeout=120) == 0
    lines = rest.splitlines()
    assert lines[-1] == "drained"
    seen += [line.split() for line in lines[:-1]]

    assert len(seen) == BURST  # every request got its report
    stored = [line for line in seen if line[3] == "stored"]
    refused = [line for line in seen if line[3] == "rejected"]
    assert len(stored) + len(refused) == BURST
    assert {line[4] for line in refused} <= {"shutting_down"}
    assert len(stored) < BURST  # the signal came mid-burst
    events = log_events(tmp_path)
    assert sorted(delivery_ids(events)) == sorted(line[1] for line in seen)
    assert outbox_count(tmp_path) == len(stored)
    assert pending_keys(tmp_path) == []  # every key in flight was completed


def test_sigkill_mid_burst_loses_no_reported_event_and_never_resends(tmp_path: Path) -> None:
    child = start_burst(tmp_path)
    assert child.stdout is not None
    reports_until(child.stdout, 50)
    child.kill()
    rest = child.stdout.read()
    child.wait(timeout=60)
    # only whole lines: the kill may cut the child's last line short ("report d")
    whole = rest.split("\n")[:-1]
    seen = [line.split() for line in whole if line.startswith("report ")]

    events = log_events(tmp_path)
    logged = set(delivery_ids(events))
    # every report the child returned before it died has its log event on disk
    assert {line[1] for line in seen} <= logged
    sent = outbox_count(tmp_path)
    pending = pending_keys(tmp_path)
    assert len(pending) <= LANES  # at most the deliveries in flight when it died

    # after the crash, retries of every key send nothing new
    settings = Settings(_env_file=None, data_dir=tmp_path, outbox_cap=100_000, idempotency_wait=0)
    tenants = TomlTenantDirectory.from_mapping(
        {"tenants": {"acme": {"provider": "outbox"}}}, environ={}
    )

    async def retry() -> list[str]:
        async with Pipeline.from_settings(settings, tenants=tenants, load_entrypoints=False) as p:
            reasons = []
            for key in pending:
                request = PhoneMessageRequest.create(
                    tenant="acme", recipient="+14155552671", code="123456", idempotency_key=key
                )
                reasons.append((await p.deliver(request)).reason or "")
            return reasons

    reasons = asyncio.run(retry())
    assert set(reasons) <= {"idempotency_in_progress", "outcome_unknown"}
    assert outbox_count(tmp_path) == sent


def test_deliveries_a_sigkill_interrupted_are_logged_once_by_the_sweep(tmp_path: Path) -> None:
    """Killed with deliveries at the provider (a gateway that holds every request), the child
    leaves their claims pending, with no log event. Nobody retries them: once stale, the next
    process's sweep logs each one outcome_unknown, to the phone it was for, once; a retry
    afterwards replays that report and sends nothing."""
    arrived = threading.Semaphore(0)
    release = threading.Event()

    def hold(_request: RecordedRequest) -> tuple[int, Body, dict[str, str]]:
        arrived.release()
        release.wait(60)  # the child dies first; the connection closes
        return 500, b"", {}

    with StubServer() as gateway:
        gateway.respond_with(hold)
        child = start_burst(tmp_path, {"BURST_TWILIO_URL": gateway.url})
        for _ in range(LANES):  # every lane's delivery is at the provider: claimed, pending
            assert arrived.acquire(timeout=60), "the child's deliveries never arrived"
        child.kill()
        child.wait(timeout=60)
        release.set()
    pending = pending_keys(tmp_path)
    assert len(pending) == LANES
    assert log_events(tmp_path) == []  # nothing was reported
    with sqlite3.connect(tmp_path / "phone-actions.sqlite3") as db:  # the crash was long ago
        db.execute("UPDATE idempotency_records SET created_at = '2000-01-01 00:00:00.000000'")

    settings = Settings(_env_file=None, data_dir=tmp_path, outbox_cap=100_000, idempotency_wait=0)
    tenants = TomlTenantDirectory.from_mapping(
        {"tenants": {"acme": {"provider": "outbox"}}}, environ={}
    )

    def unknown() -> dict[str, int]:
        found: dict[str, int] = {}
        for event in log_events(tmp_path):
            details = event["details"]
            assert isinstance(details, dict)
            failure = details.get("failure_details") or {}
            if failure.get("errorCode") == "outcome_unknown":
                key = next(k for k in pending if repr(k) in failure["message"])
                assert event["user_name"] == "+14155552671"
                found[key] = found.get(key, 0) + 1
        return found

    async def sweep_then_retry() -> tuple[int, int, list[str]]:
        async with Pipeline.from_settings(settings, tenants=tenants, load_entrypoints=False) as p:
            first = await p.stale_claims.sweep()
            second = await p.stale_claims.sweep()
            p.flush_logs()
            assert unknown() == dict.fromkeys(pending, 1)
            replies = []
            for key in pending:
                request = PhoneMessageRequest.create(
                    tenant="acme", recipient="+14155552671", code="123456", idempotency_key=key
                )
                done = await p.deliver(request)
                replies.append(f"{done.reason}/{done.replayed}")
            return first, second, replies

    first, second, replies = asyncio.run(sweep_then_retry())
    assert (first, second) == (LANES, 0)
    assert set(replies) == {"outcome_unknown/True"}
    assert unknown() == dict.fromkeys(pending, 1)  # the retries logged nothing more
    assert pending_keys(tmp_path) == []
    assert outbox_count(tmp_path) == 0  # and sent nothing
