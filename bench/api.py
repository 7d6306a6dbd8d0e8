"""The Management API over HTTP vs the same calls in-process.

``python -m bench.api [--count N] [--rounds R] [--json]``: two calls, each at 1 and 50 in
flight, interleaved round by round (the order turns every round):

- ``test``: ``POST /api/v2/actions/actions/{id}/test`` (a trivial action in the sandbox);
  in-process: the route's underlying calls (the action and its secrets from the store on the
  store executor, then ``SandboxRunner.run``).
- ``deliver``: ``POST /api/v2/phone/messages`` (into the outbox); in-process:
  ``Pipeline.deliver`` of the same request.

The HTTP side is a real ``phone-actions serve`` process (uvicorn) on 127.0.0.1, loaded by an
aiohttp client in this process; the in-process side is :func:`runtime.api.app.open_services`
in this process, on the same SQLite database (each side with its own log file). Goals: HTTP
adds <= 2 ms at p50 one call at a time, and keeps >= 0.7x the in-process throughput at 50 in
flight (where a call's latency is the 49 ahead of it: about 50 / rate).
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

import aiohttp
import orjson

from runtime.api.app import open_services
from runtime.api.deps import Services
from runtime.api.tokens import SigningKeys
from runtime.events import PhoneMessageRequest
from runtime.settings import Settings
from tests.api.conftest import create_tenants
from tests.api.processes import READY, ServiceProcess

CODE = "def on_execute_send_phone_message(event, api):\n    return {'ok': True}\n"
PAYLOAD = {
    "payload": {
        "message_options": {
            "action": "second-factor-authentication",
            "code": "123456",
            "message_type": "sms",
            "recipient": "+14155552671",
            "text": "123456 is your code",
        },
        "secrets": {},
    }
}
MESSAGE = {"to": "+14155552671", "code": "123456", "channel": "sms"}
TENANT = "bench"
CAP = 100_000_000  # the default sender's and the outbox's lifetime caps, out of the way
ENV = {"PHONE_ACTIONS_DEFAULT_SENDER_CAP": str(CAP), "PHONE_ACTIONS_OUTBOX_CAP": str(CAP)}
JSON = {"Content-Type": "application/json"}
Call = Callable[[], Awaitable[None]]


async def measure(call: Call, count: int, in_flight: int) -> tuple[float, list[float]]:
    """``count`` calls, ``in_flight`` at a time: calls per second and each latency (ms)."""
    latencies: list[float] = []
    left = iter(range(count))

    async def worker() -> None:
        for _ in left:
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return count / (time.perf_counter() - started), latencies


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def http_calls(session: aiohttp.ClientSession, url: str, action: str) -> dict[str, Call]:
    """The calls over HTTP: bodies encoded once (the client's CPU is not what is measured,
    and it shares the machine with the server), answers read with orjson, one keep-alive
    connection pool."""
    test_url, test_body = f"{url}/api/v2/actions/actions/{action}/test", orjson.dumps(PAYLOAD)
    deliver_url, deliver_body = f"{url}/api/v2/phone/messages", orjson.dumps(MESSAGE)

    async def test() -> None:
        async with session.post(test_url, data=test_body, headers=JSON) as r:
            body = orjson.loads(await r.read())
            if r.status != 200 or body["payload"]["outcome"] != "ok":
                raise RuntimeError(f"test: HTTP {r.status} {body}")

    async def deliver() -> None:
        async with session.post(deliver_url, data=deliver_body, headers=JSON) as r:
            body = orjson.loads(await r.read())
            if r.status != 200 or body["status"] != "stored":
                raise RuntimeError(f"deliver: HTTP {r.status} {body}")

    return {"test": test, "deliver": deliver}


def local_calls(svc: Services, action: str) -> dict[str, Call]:
    """The routes' own work without HTTP: the body validated by the route's model from the
    same JSON bytes, the same store calls and sandbox run or pipeline, the answer as JSON."""
    from runtime.api.action_code import script_name, trigger_of
    from runtime.api.routers.actions_test import TestBody, _event
    from runtime.api.routers.messages import PhoneMessageBody

    test_body, deliver_body = orjson.dumps(PAYLOAD), orjson.dumps(MESSAGE)

    async def test() -> None:
        body = TestBody.model_validate_json(test_body)
        found = await svc.call(svc.store.actions.get, TENANT, action)
        trigger = trigger_of(found.supported_triggers)
        assert trigger is not None
        event, extra = _event(body.payload, trigger, TENANT)
        secrets = await svc.call(svc.store.actions.secret_values, TENANT, action)
        secrets.update(extra)
        result = await svc.runner.run(
            tenant=TENANT,
            name=script_name(found.name, found.id),
            source=found.code,
            trigger=trigger,
            event=event,
            secrets=secrets,
        )
        if result.outcome != "ok":
            raise RuntimeError(f"test: {result.outcome} {result.error}")
        orjson.dumps({"payload": result.model_dump(mode="json")})

    async def deliver() -> None:
        body = PhoneMessageBody.model_validate_json(deliver_body)
        tenant = await svc.pipeline.tenant(TENANT)
        request = PhoneMessageRequest.create(
            default_country=tenant.default_country, tenant=TENANT, recipient=body.to,
            code=body.code, channel=body.channel, purpose=body.purpose, locale=body.locale,
            idempotency_key=body.idempotency_key,
        )  # fmt: skip
        report = await svc.pipeline.deliver(request)
        if report.status != "stored":
            raise RuntimeError(f"deliver: {report.status} {report.detail}")
        orjson.dumps(report.model_dump(mode="json"))

    return {"test": test, "deliver": deliver}


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) ``pid`` has used so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def compare(
    http: dict[str, Call],
    local: dict[str, Call],
    count: int,
    rounds: int,
    cpu: dict[str, Callable[[], float]],
) -> dict[str, Any]:
    """Each call at 1 and 50 in flight, both sides in turn every round. ``cpu`` reads the CPU
    seconds of the process doing each side's work (the server's; this one's): CPU per call
    is what load on the machine changes least."""
    results: dict[str, Any] = {}
    for name in ("test", "deliver"):
        for in_flight, n in ((1, max(count // 5, 20)), (50, count)):
            sides = {"http": http[name], "in-process": local[name]}
            for call in sides.values():  # warm-up: pools, workers, caches
                await measure(call, min(100, n), in_flight)
            rates: dict[str, list[float]] = {side: [] for side in sides}
            lats: dict[str, list[float]] = {side: [] for side in sides}
            cpus: dict[str, list[float]] = {side: [] for side in sides}
            ratios = []
            for number in range(rounds):
                order = list(sides) if number % 2 == 0 else list(reversed(sides))
                got = {}
                for side in order:
                    before = cpu[side]()
                    got[side] = await measure(sides[side], n, in_flight)
                    cpus[side].append((cpu[side]() - before) / n * 1e6)
                for side, (rate, lat) in got.items():
                    rates[side].append(rate)
                    lats[side].extend(lat)
                ratios.append(got["http"][0] / got["in-process"][0])
            row: dict[str, Any] = {"x_tput": statistics.median(ratios)}
            for side in sides:
                row[side] = {
                    "rate": statistics.median(rates[side]),
                    "p50_ms": percentile(lats[side], 50),
                    "p99_ms": percentile(lats[side], 99),
                    "cpu_us": statistics.median(cpus[side]),
                }
            row["added_p50_ms"] = row["http"]["p50_ms"] - row["in-process"]["p50_ms"]
            results[f"{name} @{in_flight}"] = row
    return results


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    # One database for both sides, but each its own log file: a process copies its log file
    # into the database (runtime/logs/ingest.py), and with one shared file each would also
    # copy the other side's events, on the other side's time
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        log_file=data_dir / "events-in-process.jsonl",
        default_sender_cap=CAP,
        outbox_cap=CAP,
    )
    create_tenants(settings, TENANT)
    token = SigningKeys.from_settings(settings).issue(
        tenant=TENANT, scopes=["create:actions", "create:phone_messages"], ttl=3600
    )
    async with open_services(settings) as svc:
        row = await svc.call(
            lambda: svc.store.actions.create(
                TENANT,
                name="bench",
                supported_triggers=[{"id": "send-phone-message", "version": "v2"}],
                code=CODE,
            )
        )
        await svc.runner.start()
        command = [str(Path(sys.executable).with_name("phone-actions")), "serve", "--port", "0"]
        service = ServiceProcess(command, data_dir, **ENV)
        try:
            url = service.wait_for(READY).group(1)
            headers = {"Authorization": f"Bearer {token}"}
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=2)  # < uvicorn 5 s
            async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
                return await compare(
                    http_calls(session, url, row.id),
                    local_calls(svc, row.id),
                    args.count,
                    args.rounds,
                    {
                        "http": lambda: process_cpu(service.process.pid),
                        "in-process": time.process_time,
                    },
                )
        finally:
            service.stop()
            service.kill()


def print_table(results: dict[str, Any]) -> None:
    print(
        f"{'call':<14}{'side':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU us':>9}"
        f"{'x tput':>9}{'+p50 ms':>9}"
    )
    for name, row in results.items():
        for side in ("in-process", "http"):
            s = row[side]
            extra = f"{row['x_tput']:>9.2f}{row['added_p50_ms']:>9.2f}" if side == "http" else ""
            print(
                f"{name:<14}{side:<12}{s['rate']:>9.0f}{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}"
                f"{s['cpu_us']:>9.0f}{extra}"
            )
    for name, row in results.items():
        if name.endswith("@50"):
            # at 50 in flight a call waits for the 49 ahead of it (Little's law: p50 is about
            # 50 / rate), so its latency follows the throughput: the latency goal is at @1
            goals = [f"x tput {row['x_tput']:.2f} (goal >= 0.7)"]
        else:
            goals = [f"+p50 {row['added_p50_ms']:.2f} ms (goal <= 2)"]
        print(f"{name}: " + ", ".join(goals))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="calls per round at 50")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as folder:
        results = asyncio.run(run(args, Path(folder) / "data"))
    print(f"load average at end: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
