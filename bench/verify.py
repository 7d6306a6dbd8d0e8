"""The Verify API's enrollment and confirmation over HTTP vs the bare pipeline, and the rate
limiter's own cost in memory and in Redis.

``python -m bench.verify [--count N] [--rounds R] [--redis URL] [--only SECTION] [--json]``
(``--only limiter``, or ``pipeline``: up to it; ``pipeline-memory``: with the limits in memory):

- ``limiter``: :meth:`runtime.policy.limiter.Limiter.check` of every rule at once for a voice
  code (``ip``, ``recipient``, ``user_requests``, ``user_messages``, ``user_voice``, ``country``,
  ``tenant``: 7 windows), one new user per call (no refusal), sequential, against the same
  checks built and not checked (``no limiter``): in memory; in Redis when ``--redis`` (or
  ``PHONE_ACTIONS_TEST_REDIS_URL``) names one on 127.0.0.1, both ``one script`` (the
  limiter: one EVALSHA per request) and ``limits per rule`` (``limits``' own Redis strategy,
  a test then a hit per rule: what the limiter did before, 2 x 7 script calls). Wall p50/p99
  per call and the benchmark process's CPU per call (``time.process_time``; Redis's own CPU
  is not in it). Goal: Redis adds <= 0.3 ms p50 to no limiter.
- ``pipeline``: ``Pipeline.deliver`` of one SMS into the outbox, limits on vs all rates off,
  same process, same run: what the policy step adds to a delivery.
- ``verify``: ``POST /api/v2/phone/enrollments`` then ``POST .../{id}/confirm`` with the code
  read back from the outbox (not timed), through a real ``phone-actions serve`` on 127.0.0.1,
  against ``Pipeline.deliver`` of the same message in this process (the bare pipeline).

Everything talks to 127.0.0.1 only. Rounds alternate the order of the sides; the figures are
medians over rounds of requests/s and CPU per call, and p50/p99 over every call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from plugins.outbox import OutboxProvider
from runtime.api.app import open_services
from runtime.api.tokens import SigningKeys
from runtime.events import PhoneMessageRequest
from runtime.policy.config import PhoneLimits
from runtime.policy.limiter import Limiter, checks_for
from runtime.settings import Settings
from tests.api.conftest import create_tenants
from tests.api.processes import READY, ServiceProcess

TENANT = "bench-verify"
PHONE = "+14155552671"
CAP = 100_000_000  # the outbox's lifetime cap, out of the way
JSON = {"Content-Type": "application/json"}
Call = Callable[[], Awaitable[None]]


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def timed(call: Call, count: int) -> tuple[float, list[float], float]:
    """``count`` sequential calls: calls per second, each latency (ms), CPU per call (µs)."""
    latencies = []
    cpu = time.process_time()
    started = time.perf_counter()
    for _ in range(count):
        begin = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - begin) * 1000)
    rate = count / (time.perf_counter() - started)
    return rate, latencies, (time.process_time() - cpu) / count * 1e6


async def compare(sides: dict[str, Call], count: int, rounds: int) -> dict[str, Any]:
    for call in sides.values():  # warm-up: pools, caches, connections
        await timed(call, min(50, count))
    rates: dict[str, list[float]] = {side: [] for side in sides}
    cpus: dict[str, list[float]] = {side: [] for side in sides}
    lats: dict[str, list[float]] = {side: [] for side in sides}
    for number in range(rounds):
        order = list(sides) if number % 2 == 0 else list(reversed(sides))
        for side in order:
            rate, latencies, cpu = await timed(sides[side], count)
            rates[side].append(rate)
            cpus[side].append(cpu)
            lats[side].extend(latencies)
    return {
        side: {
            "rate": statistics.median(rates[side]),
            "p50_ms": percentile(lats[side], 50),
            "p99_ms": percentile(lats[side], 99),
            "cpu_us": statistics.median(cpus[side]),
        }
        for side in sides
    }


LIMITS = PhoneLimits(
    ip="1000000/hour",
    recipient="1000000/hour",
    tenant="1000000/hour",
    country_hourly_caps={"US": 1_000_000},
)


def limiter_request() -> PhoneMessageRequest:
    """A voice code of a new user from one IP: all 7 rules apply, none refuses."""
    return PhoneMessageRequest.create(
        tenant=TENANT,
        recipient=PHONE,
        code="123456",
        channel="voice",
        user={"user_id": uuid.uuid4().hex},
        request={"ip": "203.0.113.7"},
    )


def limiter_calls(redis_url: str | None) -> tuple[dict[str, Call], list[Any]]:
    """The sides of the limiter section and what to close after it."""
    made: list[Any] = []
    calls: dict[str, Call] = {}

    async def none() -> None:
        checks_for(limiter_request(), LIMITS, "US")

    calls["no limiter"] = none
    urls: dict[str, str | None] = {"memory": None}
    if redis_url is not None:
        urls["redis: one script"] = redis_url
    for name, url in urls.items():
        limiter = Limiter(url, timeout=1.0, key_prefix=f"bench-{uuid.uuid4().hex[:8]}")
        made.append(limiter)

        def call(limiter: Limiter = limiter) -> Awaitable[None]:
            return _allowed(limiter, checks_for(limiter_request(), LIMITS, "US"))

        calls[name] = call
    if redis_url is not None:
        per_rule = PerRuleRedis(redis_url)
        made.append(per_rule)
        calls["redis: limits per rule"] = per_rule.call
    return calls, made


class PerRuleRedis:
    """The limiter before: ``limits``' Redis moving windows, every rule tested at once, then
    every rule hit at once (2 x N script calls, two waits)."""

    def __init__(self, url: str) -> None:
        self.storage = RedisStorage(
            "async+" + url, implementation="redispy", key_prefix=f"bench-{uuid.uuid4().hex[:8]}"
        )
        self.limiter = MovingWindowRateLimiter(self.storage)

    async def call(self) -> None:
        checks = checks_for(limiter_request(), LIMITS, "US")
        run = self.limiter
        tests = await asyncio.gather(*(run.test(c.item, *c.identifiers) for c in checks))
        hits = await asyncio.gather(*(run.hit(c.item, *c.identifiers) for c in checks))
        if not all(tests) or not all(hits):
            raise RuntimeError("limits per rule: refused")

    async def aclose(self) -> None:
        bridge: Any = self.storage.bridge  # limits' redis-py bridge
        await bridge.get_connection().aclose()


async def _allowed(limiter: Limiter, checks: Any) -> None:
    refusal = await limiter.check(checks)
    if refusal is not None:
        raise RuntimeError(f"limiter: {refusal.reason} {refusal.detail}")


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    calls, limiters = limiter_calls(args.redis)
    results["limiter"] = found = await compare(calls, args.count, args.rounds)
    for limiter in limiters:
        await limiter.aclose()
    for side in list(found):
        if side != "no limiter":
            found[f"{side} adds p50 ms"] = found[side]["p50_ms"] - found["no limiter"]["p50_ms"]
    if args.only == "limiter":
        return results
    if args.only == "pipeline-memory":  # the pipeline section with the limits in memory
        args.redis = None

    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        outbox_cap=CAP,
        default_sender_cap=CAP,
        redis_url=args.redis or None,
    )
    create_tenants(settings, TENANT, TENANT + "-off")
    scopes = ["create:phone_enrollments", "create:phone_challenges", "update:attack_protection"]
    keys = SigningKeys.from_settings(settings)
    token = keys.issue(tenant=TENANT, scopes=scopes, ttl=3600)
    outbox = OutboxProvider(settings.resolved_database_url, timeout=5)
    async with open_services(settings) as svc:
        await svc.call(svc.store.phone_limits.update, TENANT + "-off", _ALL_OFF)
        pipeline = svc.pipeline

        def deliver(tenant: str) -> Call:
            async def call() -> None:
                request = PhoneMessageRequest.create(
                    tenant=tenant, recipient=PHONE, code="123456",
                    user={"user_id": uuid.uuid4().hex},
                )  # fmt: skip
                report = await pipeline.deliver(request)
                if report.status != "stored":
                    raise RuntimeError(f"deliver: {report.status} {report.detail}")

            return call

        await svc.directory.refresh()
        results["pipeline"] = await compare(
            {"limits on": deliver(TENANT), "limits off": deliver(TENANT + "-off")},
            args.count,
            args.rounds,
        )
        if args.only:
            return results
        command = [str(Path(sys.executable).with_name("phone-actions")), "serve", "--port", "0"]
        env = {"PHONE_ACTIONS_OUTBOX_CAP": str(CAP), "PHONE_ACTIONS_DEFAULT_SENDER_CAP": str(CAP)}
        if args.redis:
            env["PHONE_ACTIONS_REDIS_URL"] = args.redis
        service = ServiceProcess(command, data_dir, **env)
        try:
            url = service.wait_for(READY).group(1)
            headers = {"Authorization": f"Bearer {token}", **JSON}
            async with aiohttp.ClientSession(headers=headers) as session:
                results["verify"] = await compare_verify(
                    session, url, outbox, deliver(TENANT), args
                )
        finally:
            service.stop()
    return results


_ALL_OFF: dict[str, Any] = {
    "user_messages": None,
    "user_voice": None,
    "user_requests": None,
    "blocked_number_types": [],
}


async def compare_verify(
    session: aiohttp.ClientSession,
    url: str,
    outbox: OutboxProvider,
    bare: Call,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Enrollment + confirmation over HTTP (the outbox read in between is not timed) vs the
    bare pipeline's delivery of the same code."""
    api_latencies: list[float] = []

    async def enroll_and_confirm() -> None:
        body = orjson.dumps({"user_id": uuid.uuid4().hex, "phone_number": PHONE})
        begin = time.perf_counter()
        async with session.post(f"{url}/api/v2/phone/enrollments", data=body) as r:
            made = orjson.loads(await r.read())
            if r.status != 201:
                raise RuntimeError(f"enroll: HTTP {r.status} {made}")
        spent = time.perf_counter() - begin
        text = outbox.messages(TENANT, last=1)[-1].text
        found = re.search(r"\b(\d{6})\b", text)
        assert found is not None, text
        confirm = orjson.dumps({"code": found.group(1)})
        begin = time.perf_counter()
        async with session.post(
            f"{url}/api/v2/phone/enrollments/{made['id']}/confirm", data=confirm
        ) as r:
            if r.status != 200:
                raise RuntimeError(f"confirm: HTTP {r.status} {await r.text()}")
            await r.read()
        api_latencies.append((spent + time.perf_counter() - begin) * 1000)

    for _ in range(min(20, args.count)):
        await enroll_and_confirm()
    api_latencies.clear()
    rounds: dict[str, list[float]] = {"api": [], "bare pipeline": []}
    bare_latencies: list[float] = []
    for number in range(args.rounds):
        order = ["api", "bare pipeline"] if number % 2 == 0 else ["bare pipeline", "api"]
        for side in order:
            if side == "api":
                before = sum(api_latencies)
                for _ in range(args.count):
                    await enroll_and_confirm()
                rounds[side].append(args.count / ((sum(api_latencies) - before) / 1000))
            else:
                rate, latencies, _ = await timed(bare, args.count)
                rounds[side].append(rate)
                bare_latencies.extend(latencies)
    return {
        "api (enroll + confirm)": {
            "rate": statistics.median(rounds["api"]),
            "p50_ms": percentile(api_latencies, 50),
            "p99_ms": percentile(api_latencies, 99),
        },
        "bare pipeline": {
            "rate": statistics.median(rounds["bare pipeline"]),
            "p50_ms": percentile(bare_latencies, 50),
            "p99_ms": percentile(bare_latencies, 99),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="calls per side and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--redis",
        default=os.environ.get("PHONE_ACTIONS_TEST_REDIS_URL"),
        help="Redis on 127.0.0.1 for the limiter (default: PHONE_ACTIONS_TEST_REDIS_URL)",
    )
    parser.add_argument(
        "--only",
        choices=["limiter", "pipeline", "pipeline-memory"],
        help="the limiter section, or up to the pipeline (pipeline-memory: limits in memory)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.redis and "127.0.0.1" not in args.redis and not args.redis.startswith("unix://"):
        parser.error("--redis: benchmarks talk to 127.0.0.1 only")
    start_load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        results = asyncio.run(run(args, Path(folder) / "data"))
    results["load"] = {"start": start_load, "end": os.getloadavg()[0], "cores": os.cpu_count()}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    load = results.pop("load")
    print(f"load average {load['start']:.1f} -> {load['end']:.1f} on {load['cores']} cores")
    for section, rows in results.items():
        print(f"\n{section}")
        for side, row in rows.items():
            if isinstance(row, dict):
                cpu = f"  CPU {row['cpu_us']:7.0f} us" if "cpu_us" in row else ""
                print(
                    f"  {side:28} {row['rate']:9.0f}/s  p50 {row['p50_ms']:8.3f} ms  "
                    f"p99 {row['p99_ms']:8.3f} ms{cpu}"
                )
            else:
                print(f"  {side:28} {row:.3f} ms")


if __name__ == "__main__":
    main()
