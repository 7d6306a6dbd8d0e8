"""Benchmark: each HTTP provider plugin vs a bare aiohttp client sending the same requests.

For every provider with a case in ``tests/providers/case_*.py`` (the plugin's canned success
answer), the same SMS is sent N times through the plugin (``provider.send``: validation,
request building and signing, the pooled session, the answer parsed into a receipt) and N
times through a bare ``aiohttp.ClientSession`` replaying the plugin's own request bytes and
parsing the JSON answer: the floor any client pays. Both go to one fake server in its own
process, in the same run, rounds interleaved; printed are throughput, p50 and p99 for both and
the ratio ours/bare (median of per-round ratios), at 1 and at 50 in flight.
Goal: >= 0.7x at 50 in flight for every plugin.

    .venv/bin/python bench/providers.py [--count N] [--rounds R] [--only NAME ...] [--pin] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fake_provider_apis import Answer, FakeProviders
from runtime.http_provider import HttpProvider
from tests.providers.harness import ProviderCase, all_cases, make_message

Send = Callable[[], Awaitable[Any]]
GOAL = 0.7


def answer_of(case: ProviderCase) -> Answer:
    ok = case.ok["sms"]
    if isinstance(ok.body, bytes):
        body = ok.body
    elif isinstance(ok.body, str):
        body = ok.body.encode()
    else:
        body = orjson.dumps(ok.body)
    content_type = ok.headers.get("Content-Type", "application/json").split(";")[0]
    return ok.status, body, content_type


async def measure(send: Send, count: int, in_flight: int) -> tuple[float, list[float]]:
    """Messages/s and latencies (ms) of ``count`` sends by ``in_flight`` workers."""
    latencies: list[float] = []
    remaining = iter(range(count))

    async def worker() -> None:
        for _ in remaining:
            started = time.perf_counter()
            await send()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return count / (time.perf_counter() - started), latencies


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def bench_case(
    case: ProviderCase, url: str, count: int, rounds: int, session: aiohttp.ClientSession
) -> dict[str, Any]:
    provider: HttpProvider = case.make_provider()
    config = provider.config_model.model_validate(case.config(f"{url}/{case.name}"))
    credentials = provider.credentials_model.model_validate(case.credentials)
    message = make_message(timeout=10.0)
    request = provider.build_request(message, config, credentials)

    async def ours() -> Any:
        receipt = await provider.send(message, config, credentials)
        if receipt.message_id != case.message_id:
            raise RuntimeError(f"{case.name}: unexpected receipt {receipt}")

    async def bare() -> Any:
        async with session.request(
            request.method, request.url, headers=request.headers, data=request.body
        ) as answer:
            body = await answer.read()
            if answer.status >= 300:
                raise RuntimeError(f"{case.name}: bare request got HTTP {answer.status}")
        return orjson.loads(body) if body[:1] in (b"{", b"[") else body

    results: dict[str, Any] = {}
    try:
        for mode, in_flight, n in (("1 in flight", 1, count // 4), ("50 in flight", 50, count)):
            await measure(bare, min(200, n), in_flight)  # warm-up: pools, caches
            await measure(ours, min(200, n), in_flight)
            ratios: list[float] = []
            rates: dict[str, list[float]] = {"bare": [], "ours": []}
            lats: dict[str, list[float]] = {"bare": [], "ours": []}
            for _ in range(rounds):
                rate_bare, lat_bare = await measure(bare, n, in_flight)
                rate_ours, lat_ours = await measure(ours, n, in_flight)
                ratios.append(rate_ours / rate_bare)
                rates["bare"].append(rate_bare)
                rates["ours"].append(rate_ours)
                lats["bare"].extend(lat_bare)
                lats["ours"].extend(lat_ours)
            results[mode] = {
                "ratio": statistics.median(ratios),
                **{
                    f"{side}_{stat}": value
                    for side in ("bare", "ours")
                    for stat, value in (
                        ("rate", statistics.median(rates[side])),
                        ("p50_ms", percentile(lats[side], 50)),
                        ("p99_ms", percentile(lats[side], 99)),
                    )
                },
            }
    finally:
        await provider.aclose()
    return results


async def run(url: str, cases: list[ProviderCase], args: argparse.Namespace) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=100)
    async with aiohttp.ClientSession(connector=connector) as session:
        return {
            case.name: await bench_case(case, url, args.count, args.rounds, session)
            for case in cases
        }


def print_table(results: dict[str, Any]) -> None:
    print(
        f"{'provider':<12}{'mode':<14}{'bare/s':>8}{'ours/s':>8}{'x tput':>8}"
        f"{'bare p50':>10}{'ours p50':>10}{'bare p99':>10}{'ours p99':>10}"
    )
    worst = None
    for name, modes in results.items():
        for mode, row in modes.items():
            print(
                f"{name:<12}{mode:<14}{row['bare_rate']:>8.0f}{row['ours_rate']:>8.0f}"
                f"{row['ratio']:>8.2f}{row['bare_p50_ms']:>10.2f}{row['ours_p50_ms']:>10.2f}"
                f"{row['bare_p99_ms']:>10.2f}{row['ours_p99_ms']:>10.2f}"
            )
            if mode == "50 in flight" and (worst is None or row["ratio"] < worst[1]):
                worst = (name, row["ratio"])
    print("x tput = ours / bare aiohttp, median of per-round ratios (higher is better); ms latency")
    if worst is not None:
        verdict = "met" if worst[1] >= GOAL else "NOT met"
        print(f"lowest at 50 in flight: {worst[0]} {worst[1]:.2f}x (goal >= {GOAL}x: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="sends per round at 50 in flight")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="benchmark only these providers")
    parser.add_argument("--pin", action="store_true", help="client on CPU 0, server on CPU 1")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cases = [c for c in all_cases() if not args.only or c.name in args.only]
    if args.pin:
        os.sched_setaffinity(0, {0})
    answers = {case.name: answer_of(case) for case in cases}
    with FakeProviders(answers, cpu=1 if args.pin else None) as url:
        results = asyncio.run(run(url, cases, args))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
