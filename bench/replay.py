"""Benchmark: replaying a 10,000-event recording against an action, vs the same handler
unsandboxed over the same events, in the same run.

The recording is built from ``tests/recordings/vonage_sms.jsonl``: its deliveries, with one of
its failed attempts (a refusal, a 503) in every ``--failures`` percent of the events (default
5), so every event makes one HTTP request answered from the recording. ``replay`` is the
production replay path: :class:`ActionReplayer` (the real sandbox, one warm worker for the
tenant, the real egress with the replay transport) and the comparison of outcomes, with its
Rich progress bar. ``floor`` runs the same handler compiled with plain ``compile``/``exec`` in
this process, with a plain event object and a stub ``api`` answering from the same recorded
exchanges. Printed per variant: events/s (median over rounds), p50 and p99 latency per event;
and the ratio replay/floor. Goal: replay >= 500 events/s on 2 cores. The replay runs ``--jobs``
events at once (default 1), as ``phone-actions replay --jobs`` does; the floor runs one
process's single thread.

    .venv/bin/python bench/replay.py [--events N] [--rounds R] [--failures PERCENT] [--jobs N]
        [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.recording.format import AttemptRecord, Recording, body_bytes
from runtime.recording.replay import (
    ActionReplayer,
    EventResult,
    http_hosts,
    in_order,
)

ROOT = Path(__file__).resolve().parents[1]
SOURCE_RECORDING = ROOT / "tests" / "recordings" / "vonage_sms.jsonl"
ACTION = ROOT / "tenant_actions" / "vonage_sms.py"
GOAL = 500.0


def build_recording(count: int, *, failure_percent: float) -> Recording:
    """``count`` events from the sample recording: its successful attempts, with one of its
    failed attempts (a refusal, a 503) every ``100 / failure_percent`` events."""
    base = Recording.read(SOURCE_RECORDING)
    ok = [a for a in base.attempts if a.action and a.action.outcome == "ok"]
    failed = [a for a in base.attempts if a.action and a.action.outcome != "ok"]
    every = round(100 / failure_percent) if failure_percent > 0 else 0
    chosen = []
    for i in range(count):
        if every and i % every == every - 1:
            chosen.append(failed[(i // every) % len(failed)])
        else:
            chosen.append(ok[i % len(ok)])
    attempts = [a.model_copy(update={"seq": i + 1}) for i, a in enumerate(chosen)]
    return Recording(path=f"<{count} events>", header=base.header, attempts=attempts)


# -- floor: the same handler, unsandboxed ------------------------------------------------------


class Obj(dict[str, Any]):
    """A dict readable as attributes, like the sandbox's frozen event."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return Obj({k: wrap(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(wrap(v) for v in value)
    return value


class StubApi:
    """``api.http`` answering from one attempt's recorded exchanges, in order."""

    def __init__(self) -> None:
        self.exchanges: list[Any] = []
        self.http = self

    def post(self, url: str, data: Any = None, json: Any = None, headers: Any = None) -> Any:
        exchange = self.exchanges.pop(0)
        if urlsplit(exchange.request.url).path != urlsplit(url).path:
            raise RuntimeError("not in the recording")
        answer = exchange.response
        text = body_bytes(answer).decode()
        is_json = "json" in answer.headers.get("content-type", "")
        return Obj(status=answer.status, text=text, json=wrap(_loads(text)) if is_json else None)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def floor_handler() -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(ACTION.read_text(), str(ACTION), "exec"), namespace)
    return namespace["on_execute_send_phone_message"]


def run_floor(handler: Any, attempts: list[AttemptRecord]) -> tuple[float, list[float], int]:
    api = StubApi()
    events = [wrap({**(a.event or {}), "secrets": a.secrets}) for a in attempts]
    latencies = []
    equal = 0
    started = time.perf_counter()
    for attempt, event in zip(attempts, events, strict=True):
        t0 = time.perf_counter()
        api.exchanges = list(attempt.exchanges)
        try:
            result, outcome = handler(event, api), "ok"
        except Exception:
            result, outcome = None, "runtime_error"
        recorded = attempt.action
        if recorded is not None and recorded.outcome == outcome:
            equal += outcome != "ok" or recorded.result == result
        latencies.append((time.perf_counter() - t0) * 1000)
    return len(attempts) / (time.perf_counter() - started), latencies, equal


# -- replay: the production path ---------------------------------------------------------------


async def run_replay(
    recording: Recording, source: bytes, show_progress: bool, jobs: int
) -> tuple[float, list[float], int]:
    latencies = []
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    progress = Progress(*columns, console=Console(stderr=True), disable=not show_progress)
    hosts = http_hosts(recording)
    async with ActionReplayer(allow_http_hosts=hosts, concurrency=jobs) as sandbox:
        warm = recording.attempts[:jobs]  # one warm worker per lane
        await asyncio.gather(*(sandbox.replay(a, source, name=ACTION.stem) for a in warm))
        with progress:
            task = progress.add_task("replay", total=len(recording))

            async def one(attempt: AttemptRecord) -> EventResult:
                t0 = time.perf_counter()
                result = await sandbox.replay(attempt, source, name=ACTION.stem)
                latencies.append((time.perf_counter() - t0) * 1000)
                progress.advance(task)
                return result

            started = time.perf_counter()
            results = await in_order(one, recording.attempts, jobs)
            elapsed = time.perf_counter() - started
        equal = sum(r.equal for r in results)
        spawned = (
            sandbox.runner.pool.stats().get("spawned")
            if hasattr(sandbox.runner.pool, "stats")
            else None
        )
    if spawned is not None:
        print(f"workers spawned: {spawned}", file=sys.stderr)
    return len(recording) / elapsed, latencies, equal


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--failures",
        type=float,
        default=5.0,
        help="percent of events whose action fails (a refusal or a 503, from the sample "
        "recording); a failed action retires its sandbox worker, so failures cost a fork",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="events replayed at once, as `phone-actions replay --jobs` (the sample action "
        "keeps no state between invocations, so more than one replays it faithfully)",
    )
    args = parser.parse_args()
    recording = build_recording(args.events, failure_percent=args.failures)
    source = ACTION.read_bytes()
    handler = floor_handler()
    rows: dict[str, dict[str, list[Any]]] = {
        "replay": {"rate": [], "lat": [], "equal": []},
        "floor": {"rate": [], "lat": [], "equal": []},
    }
    load = os.getloadavg()
    for _ in range(args.rounds):
        rate, lat, equal = asyncio.run(run_replay(recording, source, not args.json, args.jobs))
        rows["replay"]["rate"].append(rate)
        rows["replay"]["lat"] += lat
        rows["replay"]["equal"].append(equal)
        rate, lat, equal = run_floor(handler, recording.attempts)
        rows["floor"]["rate"].append(rate)
        rows["floor"]["lat"] += lat
        rows["floor"]["equal"].append(equal)
    result: dict[str, Any] = {
        "events": args.events,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "jobs": args.jobs,
    }
    result["loadavg"] = [load[0], os.getloadavg()[0]]
    for name, row in rows.items():
        result[name] = {
            "events_per_s": statistics.median(row["rate"]),
            "p50_ms": percentile(row["lat"], 50),
            "p99_ms": percentile(row["lat"], 99),
            "equal": min(row["equal"]),
        }
    result["ratio_replay_over_floor"] = (
        result["replay"]["events_per_s"] / result["floor"]["events_per_s"]
    )
    result["goal"] = {
        "events_per_s": GOAL,
        "met": result["replay"]["events_per_s"] >= GOAL,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{args.events} events x {args.rounds} rounds, {os.cpu_count()} CPUs, "
        f"{args.jobs} at once, load {load[0]:.2f}"
    )
    print(f"{'variant':8} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'equal':>7}")
    for name in ("replay", "floor"):
        r = result[name]
        print(
            f"{name:8} {r['events_per_s']:10.0f} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} "
            f"{r['equal']:7d}"
        )
    verdict = "PASS" if result["goal"]["met"] else "MISS"
    print(
        f"replay / floor: {result['ratio_replay_over_floor']:.3f}x; "
        f"goal replay >= {GOAL:.0f} events/s: {verdict}"
    )


if __name__ == "__main__":
    main()
