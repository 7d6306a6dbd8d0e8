"""Benchmark: N SMS through the pipeline (Twilio plugin) vs the bare ``twilio`` SDK, and the
pipeline with idempotency keys (SQLite, and PostgreSQL when a URL is given) vs without.

Every variant sends to the same fake Twilio server (its own process, 127.0.0.1), in the same
run, interleaved round by round so that a noisy machine hurts all alike. Printed: throughput,
client CPU per message, p50 and p99 latency, and two ratios: ``x SDK`` against the bare SDK and
``x pipe`` against the keyless pipeline (throughput: higher is better). Goals: the pipeline
>= 0.85x the bare SDK, and the pipeline with keys >= 0.85x the keyless pipeline, on SQLite and
on PostgreSQL, both sequentially and at 50 in flight.

    .venv/bin/python bench/pipeline.py [--pin] [--sequential N] [--concurrent N] [--rounds R]
        [--postgres URL] [--no-settle] [--json]

``--postgres`` defaults to ``PHONE_ACTIONS_TEST_POSTGRES_URL``; without either, the PostgreSQL
variant is left out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fake_twilio import FakeTwilio
from runtime import PhoneMessageRequest
from runtime.delivery import Pipeline
from runtime.heap import settle
from runtime.settings import Settings
from runtime.store import StoreExecutor
from runtime.tenants import TomlTenantDirectory

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "bench-token"
FROM = "+15017122661"
TO = "+14155552671"
Send = Callable[[int], Awaitable[Any]]


class BareRewritingClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The SDK's own async client, pointed at the fake server."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self._base = urlsplit(base_url)

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        p = urlsplit(url)
        url = urlunsplit((self._base.scheme, self._base.netloc, p.path, p.query, p.fragment))
        return await super().request(method, url, *args, **kwargs)


async def measure(send: Send, count: int, in_flight: int) -> tuple[float, list[float], float]:
    """Send ``count`` messages with ``in_flight`` workers.

    Returns messages/s, latencies in ms, and this process's CPU time per message in µs (the
    client side's cost, whatever the machine's other load).
    """
    latencies: list[float] = []
    counter = iter(range(count))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            await send(i)
            latencies.append((time.perf_counter() - started) * 1000)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return count / elapsed, latencies, cpu / count * 1e6


async def hand_off_floor(count: int = 2000) -> float:
    """p50 µs of one thread hand-off and back (a store call that does nothing): the cost a
    report's log line (and each store call of a key) pays on this machine, whatever our code."""
    executor = StoreExecutor(max_workers=1)
    times: list[float] = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            await executor.run(_nothing, timeout=5)
            times.append((time.perf_counter() - started) * 1e6)
    finally:
        executor.shutdown()
    return statistics.median(times[count // 10 :])


def _nothing() -> None:
    return None


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def run(url: str, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    http = BareRewritingClient(url)
    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)

    async def bare(_i: int) -> Any:
        return await client.messages.create_async(to=TO, from_=FROM, body="123456 is your code")

    tenants = TomlTenantDirectory.from_mapping(
        {
            "tenants": {
                "bench": {
                    "provider": "twilio",
                    "provider_settings": {"from_number": FROM, "base_url": url},
                    "credentials_env": {"account_sid": "BENCH_SID", "auth_token": "BENCH_TOKEN"},
                }
            }
        },
        environ={"BENCH_SID": ACCOUNT_SID, "BENCH_TOKEN": AUTH_TOKEN},
    )
    settings = Settings(_env_file=None, data_dir=data_dir)
    pipeline = Pipeline.from_settings(settings, tenants=tenants, load_entrypoints=False)
    pipelines = [pipeline]
    on_postgres = None
    if args.postgres:
        pg_settings = Settings(_env_file=None, data_dir=data_dir / "pg", database_url=args.postgres)
        on_postgres = Pipeline.from_settings(pg_settings, tenants=tenants, load_entrypoints=False)
        pipelines.append(on_postgres)
    run_id = time.monotonic_ns()

    def ours(keyed: bool, pipeline: Pipeline = pipeline) -> Send:
        async def send(i: int) -> Any:
            request = PhoneMessageRequest(
                tenant="bench",
                recipient=TO,
                code="123456",
                idempotency_key=f"{run_id}-{i}-{time.perf_counter_ns()}" if keyed else None,
            )
            report = await pipeline.deliver(request)
            if report.status != "delivered" or report.reason:
                raise RuntimeError(f"pipeline failed: {report.reason} {report.detail}")
            return report

        return send

    variants: dict[str, Send] = {
        "bare SDK": bare,
        "pipeline": ours(False),
        "pipeline+keys sqlite": ours(True),
    }
    if on_postgres is not None:
        variants["pipeline+keys postgres"] = ours(True, on_postgres)
    results: dict[str, Any] = {"hand_off_us": await hand_off_floor()}
    if not args.no_settle:  # as ``serve`` does once its services are open
        results["frozen_objects"] = settle()
    try:
        for mode, count, in_flight in (
            ("sequential", args.sequential, 1),
            ("50 in flight", args.concurrent, 50),
        ):
            rates: dict[str, list[float]] = {name: [] for name in variants}
            ratios: dict[str, list[float]] = {name: [] for name in variants}
            to_pipeline: dict[str, list[float]] = {name: [] for name in variants}
            cpus: dict[str, list[float]] = {name: [] for name in variants}
            lats: dict[str, list[float]] = {name: [] for name in variants}
            for send in variants.values():  # warm-up: pools, caches
                await measure(send, min(200, count), in_flight)
            names = list(variants)
            for round_number in range(args.rounds):
                # Interleaved: each round's ratio compares runs made under the same conditions,
                # and the order turns every round so that no variant always runs first.
                round_rates = {}
                shift = round_number % len(names)
                for name in names[shift:] + names[:shift]:
                    send = variants[name]
                    rate, latencies, cpu = await measure(send, count, in_flight)
                    round_rates[name] = rate
                    rates[name].append(rate)
                    cpus[name].append(cpu)
                    lats[name].extend(latencies)
                for name in variants:
                    ratios[name].append(round_rates[name] / round_rates["bare SDK"])
                    to_pipeline[name].append(round_rates[name] / round_rates["pipeline"])
            results[mode] = {
                name: {
                    "throughput": statistics.median(rates[name]),
                    "ratio": statistics.median(ratios[name]),
                    "x_pipeline": statistics.median(to_pipeline[name]),
                    "cpu_us": statistics.median(cpus[name]),
                    "p50_ms": percentile(lats[name], 50),
                    "p99_ms": percentile(lats[name], 99),
                }
                for name in variants
            }
    finally:
        for each in pipelines:
            await each.aclose()
        await http.close()
    return results


def print_table(results: dict[str, Any]) -> None:
    print(
        f"{'mode':<14}{'variant':<24}{'msg/s':>8}{'cpu µs':>8}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'x SDK':>7}{'x pipe':>8}"
    )
    for mode, variants in results.items():
        if mode in ("hand_off_us", "frozen_objects"):
            continue
        for name, row in variants.items():
            print(
                f"{mode:<14}{name:<24}{row['throughput']:>8.0f}{row['cpu_us']:>8.0f}"
                f"{row['p50_ms']:>8.2f}{row['p99_ms']:>8.2f}{row['ratio']:>7.2f}"
                f"{row['x_pipeline']:>8.2f}"
            )
    print(
        "x SDK / x pipe = throughput / the bare SDK's / the keyless pipeline's: medians of "
        "per-round ratios (rounds interleaved), higher is better; cpu µs = client CPU per "
        "message (every thread of the client process)"
    )
    print(
        f"one thread hand-off and back on this machine (a no-op store call, p50): "
        f"{results['hand_off_us']:.0f} µs; each message pays one (its log line), a keyed one "
        "a second (the claim, before it sends)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Many short rounds rather than a few long ones: the machine's speed drifts by tens of
    # percent over seconds here, and only runs close in time compare fairly.
    parser.add_argument("--sequential", type=int, default=400, help="messages per round")
    parser.add_argument("--concurrent", type=int, default=1500, help="messages per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("PHONE_ACTIONS_TEST_POSTGRES_URL"),
        help="PostgreSQL URL for the keyed PostgreSQL variant (its tables are migrated in)",
    )
    parser.add_argument(
        "--no-settle",
        action="store_true",
        help="leave the heap to the collector's defaults (serve freezes it and raises the "
        "young generation's threshold)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="client on CPU 0, fake server on CPU 1: less noise from the scheduler",
    )
    args = parser.parse_args()
    if args.pin:
        os.sched_setaffinity(0, {0})
    with FakeTwilio(cpu=1 if args.pin else None) as url, tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(run(url, args, Path(tmp)))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
