"""The JSON Lines log sink: cost per report, vs a buffered sink that may lose events.

    .venv/bin/python bench/log_sink.py [--count N] [--rounds R] [--json]

The baseline appends each report's lines to a 64 KiB userspace buffer flushed once a second
(fast, and it loses the last second of events on a kill); the sink measured here returns only
once the lines were handed to the OS, with one ``os.write`` per batch from its own thread. Both
run one report at a time and 50 writers at once, in interleaved rounds (the order turns every
round). Printed: the median over rounds of wall and CPU microseconds per report (CPU is the
whole process, the writer thread included), and ours / old.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from runtime.events import Attempt, DeliveryReport, PhoneMessageRequest
from runtime.logs import JsonLinesLogSink, json_lines

REQUEST = PhoneMessageRequest.create(tenant="acme", recipient="+14155552671", code="735194")


class BufferedSink:
    """The sink as it was: lines into a 64 KiB buffer, flushed at most once a second."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("ab", buffering=1 << 16)
        self._lock = threading.Lock()
        self._flushed_at = time.monotonic()

    async def write(self, request: PhoneMessageRequest, report: DeliveryReport) -> None:
        data = b"".join(json_lines(request, report))
        with self._lock:
            self._file.write(data)
            now = time.monotonic()
            if now - self._flushed_at >= 1.0:
                self._file.flush()
                self._flushed_at = now

    def close(self) -> None:
        self._file.close()


def reports(count: int) -> list[DeliveryReport]:
    attempt = Attempt(provider="outbox", outcome="delivered", latency_ms=1.0, message_id="m")
    return [
        DeliveryReport(
            tenant="acme",
            recipient="+14155552671",
            channel="sms",
            purpose="verification",
            status="delivered",
            attempts=[attempt],
        )
        for _ in range(count)
    ]


Write = Callable[[PhoneMessageRequest, DeliveryReport], Awaitable[None]]


async def sequential(write: Write, items: list[DeliveryReport]) -> None:
    for report in items:
        await write(REQUEST, report)


async def concurrent(write: Write, items: list[DeliveryReport]) -> None:
    async def lane(lane_items: list[DeliveryReport]) -> None:
        for report in lane_items:
            await write(REQUEST, report)

    await asyncio.gather(*(lane(items[i::50]) for i in range(50)))


def measure(kind: str, mode: str, count: int, folder: Path) -> tuple[float, float]:
    """Wall and CPU microseconds per report for one run."""
    path = folder / f"{kind}-{mode}.jsonl"
    sink: BufferedSink | JsonLinesLogSink = (
        BufferedSink(path) if kind == "old" else JsonLinesLogSink(path)
    )
    items = reports(count)
    run = sequential if mode == "sequential" else concurrent
    wall, cpu = time.perf_counter(), time.process_time()
    asyncio.run(run(sink.write, items))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    sink.close()
    path.unlink()
    return wall / count * 1e6, cpu / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", file=sys.stderr)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            order = [("old", "new"), ("new", "old")][round_ % 2]
            for mode in ("sequential", "concurrent"):
                for kind in order:
                    results.setdefault((mode, kind), []).append(
                        measure(kind, mode, args.count, Path(folder))
                    )
    print(f"load average at end: {os.getloadavg()}", file=sys.stderr)
    table = {
        f"{mode} {kind}": {
            "wall_us": statistics.median(w for w, _ in runs),
            "cpu_us": statistics.median(c for _, c in runs),
        }
        for (mode, kind), runs in results.items()
    }
    if args.json:
        print(json.dumps(table, indent=2))
        return
    print(f"{'':22}{'wall us/report':>16}{'cpu us/report':>16}")
    for name, row in table.items():
        print(f"{name:22}{row['wall_us']:16.1f}{row['cpu_us']:16.1f}")
    for mode in ("sequential", "concurrent"):
        new, old = table[f"{mode} new"], table[f"{mode} old"]
        print(
            f"{mode}: new/old wall x{new['wall_us'] / old['wall_us']:.2f}, "
            f"cpu x{new['cpu_us'] / old['cpu_us']:.2f}"
        )


if __name__ == "__main__":
    main()
