"""Measure async HTTP clients at 1 and 50 requests in flight against one local server.

httpx 0.28's ``AsyncClient`` is known to collapse under concurrency (encode/httpx#3215), so
this decides which client the provider plugins use. Compared, in the same run and
against the same fake server (its own process): bare aiohttp, httpx's ``AsyncClient`` (its
default httpcore transport), and httpx over the httpx-aiohttp transport when that package is
installed (it is not a dependency: ``pip install httpx-aiohttp`` to include it). The result
chose aiohttp for ``runtime/http.py``.

    .venv/bin/python bench/http_clients.py [--count N] [--rounds R] [--pin]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fake_provider_apis import FakeProviders
from bench.providers import measure, percentile

BODY = orjson.dumps({"from": "Acme", "to": "447911123456", "text": "735194 is your code"})
ANSWER = orjson.dumps({"id": "m-1", "responseCode": 0, "responseText": "SMS sent"})
HEADERS = {"Content-Type": "application/json", "X-Mitto-API-Key": "bench-key"}


async def clients(url: str) -> dict[str, tuple[Callable[[], Awaitable[Any]], Any]]:
    """name -> (send one request, the object to close)."""
    target = f"{url}/mitto/sms"
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=100))

    async def bare() -> Any:
        async with session.post(target, data=BODY, headers=HEADERS) as answer:
            return orjson.loads(await answer.read())

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    plain = httpx.AsyncClient(limits=limits)

    async def httpx_default() -> Any:
        return (await plain.post(target, content=BODY, headers=HEADERS)).json()

    found: dict[str, tuple[Callable[[], Awaitable[Any]], Any]] = {
        "aiohttp": (bare, session),
        "httpx (httpcore)": (httpx_default, plain),
    }
    try:
        from httpx_aiohttp import AiohttpTransport
    except ImportError:
        print("httpx-aiohttp not installed: that variant is skipped", file=sys.stderr)
        return found
    over = httpx.AsyncClient(
        transport=AiohttpTransport(
            client=lambda: aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=100)
            )
        )
    )

    async def httpx_aiohttp() -> Any:
        return (await over.post(target, content=BODY, headers=HEADERS)).json()

    found["httpx + httpx-aiohttp"] = (httpx_aiohttp, over)
    return found


async def run(url: str, count: int, rounds: int) -> None:
    variants = await clients(url)
    print(f"{'client':<24}{'in flight':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'x aiohttp':>11}")
    try:
        for in_flight in (1, 50):
            n = count if in_flight > 1 else count // 4
            rates: dict[str, list[float]] = {name: [] for name in variants}
            lats: dict[str, list[float]] = {name: [] for name in variants}
            ratios: dict[str, list[float]] = {name: [] for name in variants}
            for send, _ in variants.values():
                await measure(send, min(200, n), in_flight)
            for _ in range(rounds):
                this_round = {}
                for name, (send, _) in variants.items():
                    rate, latencies = await measure(send, n, in_flight)
                    this_round[name] = rate
                    rates[name].append(rate)
                    lats[name].extend(latencies)
                for name in variants:
                    ratios[name].append(this_round[name] / this_round["aiohttp"])
            for name in variants:
                print(
                    f"{name:<24}{in_flight:>10}{statistics.median(rates[name]):>9.0f}"
                    f"{percentile(lats[name], 50):>9.2f}{percentile(lats[name], 99):>9.2f}"
                    f"{statistics.median(ratios[name]):>11.2f}"
                )
    finally:
        for _, closable in variants.values():
            await (
                closable.close()
                if isinstance(closable, aiohttp.ClientSession)
                else closable.aclose()
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pin", action="store_true", help="client on CPU 0, server on CPU 1")
    args = parser.parse_args()
    if args.pin:
        os.sched_setaffinity(0, {0})
    with FakeProviders(
        {"mitto": (200, ANSWER, "application/json")}, cpu=1 if args.pin else None
    ) as url:
        asyncio.run(run(url, args.count, args.rounds))


if __name__ == "__main__":
    main()
