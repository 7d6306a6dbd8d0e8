"""Benchmark: tenant actions through the sandbox vs the same handler called in-process.

All in one run, interleaved round by round so that a noisy machine hurts every variant alike:

(a) round trip, warm, one call at a time, for a trivial handler and the realistic handler
    (``bench/fixtures/realistic_action.py``), without and with its HTTP call:
    * ``floor``: the handler compiled with plain ``compile``/``exec`` and called directly with
      a plain dict event and a stub ``api`` (the HTTP call, if any, is a real request to the
      same local fake server over a keep-alive ``httpx.Client``);
    * ``language layer``: ``executor.invoke_source`` in this process (RestrictedPython code,
      guards, frozen event, ``api`` facade, result checks; no process boundary);
    * ``sandbox``: ``SandboxRunner.run``, the production path (RPC to a warm worker, egress
      re-validation in the supervisor);
(b) throughput with ``--in-flight`` (default 8) invocations in flight, 1, 10 and 1,000
    tenants in rotation, against the floor's single-thread throughput for the same handler;
    two extra rows: ``1000 @1`` (one in flight: the cold-start service time) and ``1000 wN``
    (a pool of ``max_workers=N``, ``--warm-pool``, big enough to keep every tenant warm). Each
    row also says the CPU time one invocation cost, split into the supervisor (this process),
    the zygote and the workers (from /proc: the zygote's reaped children plus its live ones);
    ``--profile`` adds the supervisor's busiest functions (cProfile) for the 1,000-tenant rows;
(c) private memory (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup) of 50 idle warm
    workers (50 tenants) and of the zygote.

The fake HTTP server runs in its own process on 127.0.0.1 (``bench.fake_twilio``), allowed via
``EgressPolicy(allow_http_hosts=...)``; nothing else is contacted. Ratios are sandbox / floor
(latency: lower is better; throughput: higher is better). Goals: trivial round trip
p50 <= 0.5 ms and p99 <= 3 ms; realistic round trip p50 <= 4x its floor; >= 2,000
invocations/s for one tenant; a new tenant one at a time (``1000 @1``, trivial) p50 <= 2 ms;
p50 <= 10 ms with 1,000 tenants in rotation over 64 workers at 8 in flight; <= 5 MiB private
memory per idle worker.

    .venv/bin/python bench/sandbox.py [--quick] [--json] [--rounds R] [--in-flight N]
                                      [--max-workers N] [--warm-pool N] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import itertools
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fake_twilio import FakeTwilio
from runtime.sandbox.guest import executor
from runtime.sandbox.host.egress import EgressPolicy
from runtime.sandbox.host.runner import SandboxRunner
from runtime.sandbox.shared.contract import HANDLERS, SandboxLimits, Trigger

ROOT = Path(__file__).resolve().parents[1]
TRIGGER: Trigger = "send-phone-message"
HANDLER = HANDLERS[TRIGGER]
TRIVIAL = f"""
def {HANDLER}(event, api):
    return {{"to": event["message_options"]["recipient"]}}
"""
REALISTIC = (ROOT / "bench" / "fixtures" / "realistic_action.py").read_text()
EVENT_FILE = ROOT / "tests" / "events" / "spm_sms_verify_us.json"
HTTP_SECRETS = {"ACCOUNT_SID": "AC" + "0" * 32, "AUTH_TOKEN": "bench-token", "FROM_NUMBER": "+1501"}
MiB = 1024 * 1024
GOALS = {
    "rt_p50_ms": 0.5,
    "rt_p99_ms": 3.0,
    "one_tenant_per_s": 2000.0,
    "many_tenants_p50_ms": 10.0,
    "cold_start_p50_ms": 2.0,
    "realistic_x_floor": 4.0,
    "idle_worker_mib": 5.0,
}

Call = Callable[[int], Awaitable[Any]]


# ---------------------------------------------------------------------------- statistics


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "n": len(latencies),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# ---------------------------------------------------------------------------- handlers


class Handler:
    """One handler under test: its source, its event and the secrets the sandbox adds."""

    def __init__(self, key: str, source: str, event: dict[str, Any], secrets: dict[str, str]):
        self.key = key
        self.source = source
        self.event = event
        self.secrets = secrets


def load_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads(EVENT_FILE.read_text(encoding="utf-8"))
    event.pop("secrets", None)  # the sandbox supplies the tenant's own
    return event


def handlers(gateway: str) -> list[Handler]:
    event = load_event()
    return [
        Handler("trivial", TRIVIAL, event, {}),
        Handler("realistic", REALISTIC, event, {}),
        Handler("realistic+http", REALISTIC, event, {**HTTP_SECRETS, "GATEWAY_URL": gateway}),
    ]


class SyncHttp:
    """The HTTP call of the floor and the language layer: a plain keep-alive httpx client."""

    def __init__(self) -> None:
        self.client = httpx.Client(trust_env=False, timeout=5.0)

    def request(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = self.client.request(method, url, **kwargs)
        content_type = response.headers.get("content-type", "")
        return {
            "status": response.status_code,
            "headers": dict(response.headers),
            "text": response.text,
            "json": response.json() if content_type.startswith("application/json") else None,
        }

    def close(self) -> None:
        self.client.close()


def floor_call(handler: Handler, http: SyncHttp) -> Callable[[], Any]:
    """The handler as plain Python: ``exec``-compiled once, called with a dict and a stub api."""
    namespace: dict[str, Any] = {"__name__": "floor"}
    exec(compile(handler.source, f"<floor:{handler.key}>", "exec"), namespace)
    function = namespace[HANDLER]
    logs: list[str] = []

    def post(
        url: str, json: Any = None, data: Any = None, headers: Any = None, timeout: Any = None
    ) -> dict[str, Any]:
        return http.request("POST", url, json=json, data=data, headers=headers, timeout=timeout)

    api = SimpleNamespace(
        http=SimpleNamespace(post=post),
        log=SimpleNamespace(info=logs.append, warning=logs.append, error=logs.append),
    )
    event = {**handler.event, "secrets": handler.secrets}

    def call() -> Any:
        result = function(event, api)
        logs.clear()
        return result

    return call


class LocalChannel:
    """``ApiChannel`` for the in-process language layer: serves ``http.request`` directly."""

    def __init__(self, http: SyncHttp) -> None:
        self.http = http

    def call(self, op: str, params: dict[str, Any]) -> Any:
        if op != "http.request":
            return None
        return self.http.request(
            params["method"],
            params["url"],
            headers=params["headers"],
            data=params["data"],
            json=params["json"],
            timeout=params["timeout"],
        )


def language_call(handler: Handler, http: SyncHttp) -> Callable[[], Any]:
    limits = SandboxLimits()
    channel = LocalChannel(http)
    event = {**handler.event, "secrets": handler.secrets}

    def call() -> Any:
        result = executor.invoke_source(
            handler.source,
            name=handler.key,
            trigger=TRIGGER,
            event=event,
            channel=channel,
            limits=limits,
        )
        if result.outcome != "ok":
            raise RuntimeError(f"language layer failed: {result.error}")
        return result

    return call


def sandbox_call(runner: SandboxRunner, handler: Handler, tenants: int) -> Call:
    """``SandboxRunner.run``; each call goes to the next of ``tenants`` tenants in rotation
    (the rotation carries on across warm-ups and rounds)."""
    names = itertools.cycle([f"bench-{handler.key}-{i}" for i in range(tenants)])

    async def call(_i: int) -> Any:
        result = await runner.run(
            tenant=next(names),
            name=handler.key,
            source=handler.source,
            trigger=TRIGGER,
            event=handler.event,
            secrets=handler.secrets,
        )
        if result.outcome != "ok":
            raise RuntimeError(f"sandbox failed: {result.outcome} {result.error}")
        return result

    return call


# ---------------------------------------------------------------------------- measuring


def measure_sync(call: Callable[[], Any], count: int) -> tuple[float, list[float]]:
    """``count`` calls back to back, untimed (calls/s), then ``count`` timed ones (latencies
    in ms): for a sub-microsecond handler the timer itself would halve the rate."""
    clock = time.perf_counter
    started = clock()
    for _ in range(count):
        call()
    rate = count / (clock() - started)
    latencies = []
    for _ in range(count):
        t0 = clock()
        call()
        latencies.append((clock() - t0) * 1000)
    return rate, latencies


async def measure_async(call: Call, count: int, in_flight: int) -> tuple[float, list[float]]:
    """``count`` calls with ``in_flight`` at a time: (calls/s, latencies in ms)."""
    latencies: list[float] = []
    counter = iter(range(count))
    clock = time.perf_counter

    async def worker() -> None:
        for i in counter:
            t0 = clock()
            await call(i)
            latencies.append((clock() - t0) * 1000)

    started = clock()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return count / (clock() - started), latencies


async def latency_section(
    runner: SandboxRunner, cases: list[Handler], http: SyncHttp, args: argparse.Namespace
) -> dict[str, Any]:
    """(a): sequential round trips, warm; variants interleaved per round. The in-process
    variants are timed synchronously, so no event-loop overhead is charged to them."""
    variants: dict[str, dict[str, Callable[[], Any]]] = {}
    for handler in cases:
        variants[handler.key] = {
            "floor": floor_call(handler, http),
            "language layer": language_call(handler, http),
            "sandbox": partial(sandbox_call(runner, handler, 1), 0),
        }
    lats: dict[str, dict[str, list[float]]] = {
        key: {name: [] for name in calls} for key, calls in variants.items()
    }
    clock = time.perf_counter
    for round_ in range(args.rounds + 1):  # round 0 warms up: worker, caches, connections
        count = args.warmup if round_ == 0 else args.latency
        for key, calls in variants.items():
            for name, call in calls.items():
                out = [] if round_ == 0 else lats[key][name]
                if name == "sandbox":
                    for _ in range(count):
                        t0 = clock()
                        await call()
                        out.append((clock() - t0) * 1000)
                else:
                    for _ in range(count):
                        t0 = clock()
                        call()
                        out.append((clock() - t0) * 1000)
    results: dict[str, Any] = {}
    for key, by_variant in lats.items():
        rows = {name: summary(values) for name, values in by_variant.items()}
        base = rows["floor"]
        for row in rows.values():
            row["x_p50"] = row["p50_ms"] / base["p50_ms"]
            row["x_p99"] = row["p99_ms"] / base["p99_ms"]
        results[key] = rows
    trivial = results["trivial"]["sandbox"]
    trivial["goal"] = {
        "p50_ms<=0.5": verdict(trivial["p50_ms"] <= GOALS["rt_p50_ms"]),
        "p99_ms<=3": verdict(trivial["p99_ms"] <= GOALS["rt_p99_ms"]),
    }
    realistic = results["realistic"]["sandbox"]
    realistic["goal"] = {"x_p50<=4": verdict(realistic["x_p50"] <= GOALS["realistic_x_floor"])}
    return results


class Config:
    """One throughput row: which pool, how many tenants in rotation, how many in flight."""

    def __init__(self, label: str, runner: SandboxRunner, tenants: int, in_flight: int, count: int):
        self.label = label
        self.runner = runner
        self.tenants = tenants
        self.in_flight = in_flight
        self.count = count


async def throughput_section(
    runner: SandboxRunner,
    policy: EgressPolicy,
    cases: list[Handler],
    http: SyncHttp,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """(b): ``in_flight`` at a time, 1/10/1000 tenants in rotation, vs the floor.

    Extra rows: 1,000 tenants one at a time (the cold-start service time, no queueing) and,
    with ``--warm-pool N``, 1,000 tenants on a pool of ``max_workers=N`` (one per handler)."""
    results: dict[str, Any] = {}
    for handler in cases:
        warm_pool = None
        if args.warm_pool:
            warm_pool = SandboxRunner(policy=policy, max_workers=args.warm_pool)
            await warm_pool.start()
        try:
            results[handler.key] = await throughput_rows(runner, warm_pool, handler, http, args)
        finally:
            if warm_pool is not None:
                await warm_pool.aclose()
    return results


async def throughput_rows(
    runner: SandboxRunner,
    warm_pool: SandboxRunner | None,
    handler: Handler,
    http: SyncHttp,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The (b) rows of one handler; pools are shared, rows interleaved round by round."""
    many = args.throughput_many
    floor = floor_call(handler, http)
    configs = [
        Config("1", runner, 1, args.in_flight, args.throughput),
        Config("10", runner, 10, args.in_flight, args.throughput),
        Config("1000", runner, 1000, args.in_flight, many),
        Config("1000 @1", runner, 1000, 1, max(many // 4, 50)),
    ]
    if warm_pool is not None:
        label = f"1000 w{args.warm_pool}"
        configs.append(Config(label, warm_pool, 1000, args.in_flight, args.throughput))
    calls = {c.label: sandbox_call(c.runner, handler, c.tenants) for c in configs}
    rates: dict[str, list[float]] = {"floor": [], **{c.label: [] for c in configs}}
    lats: dict[str, list[float]] = {"floor": [], **{c.label: [] for c in configs}}
    churn: dict[str, dict[str, int]] = {c.label: {} for c in configs}
    cpu: dict[str, CpuTime] = {c.label: CpuTime() for c in configs}
    profiles: dict[str, cProfile.Profile] = {}
    for round_ in range(args.rounds):
        rate, latencies = measure_sync(floor, args.throughput)
        rates["floor"].append(rate)
        lats["floor"].extend(latencies)
        for c in configs:
            call = calls[c.label]
            if round_ == 0 and c.runner is warm_pool:
                await measure_async(call, c.tenants, c.in_flight)  # start them all
            else:
                await measure_async(call, min(c.count, 200), c.in_flight)
            before = c.runner.pool.stats()
            start = cpu_snapshot(before["zygote_pid"])
            profile = profiles.setdefault(c.label, cProfile.Profile()) if args.profile else None
            if profile is not None and c.tenants == 1000:
                profile.enable()
            rate, latencies = await measure_async(call, c.count, c.in_flight)
            if profile is not None:
                profile.disable()
            after = c.runner.pool.stats()
            cpu[c.label].add(start, cpu_snapshot(after["zygote_pid"]), c.count)
            rates[c.label].append(rate)
            lats[c.label].extend(latencies)
            for key in ("spawned", "evicted", "recycled", "killed"):
                churn[c.label][key] = churn[c.label].get(key, 0) + after[key] - before[key]
    rows: dict[str, Any] = {}
    for key in rates:
        rows[key] = {"per_s": statistics.median(rates[key]), **summary(lats[key])}
    base = rows["floor"]["per_s"]
    for c in configs:
        row = rows[c.label]
        row |= {"tenants": c.tenants, "in_flight": c.in_flight, "pool": churn[c.label]}
        row["max_workers"] = args.warm_pool if c.runner is warm_pool else args.max_workers
        row["cpu_ms_per_inv"] = cpu[c.label].per_invocation()
        if c.label in profiles and c.tenants == 1000:
            row["profile"] = top_functions(profiles[c.label])
        if c.tenants == 1:
            row["goal"] = {">=2000/s": verdict(row["per_s"] >= GOALS["one_tenant_per_s"])}
        elif c.label == "1000" and c.runner is runner and handler.key == "trivial":
            ok = row["p50_ms"] <= GOALS["many_tenants_p50_ms"]
            row["goal"] = {"p50_ms<=10": verdict(ok)}
        elif c.label == "1000 @1" and handler.key == "trivial":
            row["goal"] = {"p50_ms<=2": verdict(row["p50_ms"] <= GOALS["cold_start_p50_ms"])}
    for row in rows.values():
        row["x_floor"] = row["per_s"] / base
    return rows


# ---------------------------------------------------------------------------- CPU time

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_cpu(pid: int) -> tuple[float, float]:
    """``(own, reaped children)`` CPU seconds of ``pid`` (utime+stime, cutime+cstime)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0, 0.0
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / _TICK, (cutime + cstime) / _TICK


def cpu_snapshot(zygote: int | None) -> dict[str, Any]:
    """This process's CPU, the zygote's own, its reaped children's and each live child's."""
    snapshot: dict[str, Any] = {"supervisor": time.process_time(), "zygote": 0.0, "reaped": 0.0}
    snapshot["live"] = {}
    if zygote is None:
        return snapshot
    snapshot["zygote"], snapshot["reaped"] = _stat_cpu(zygote)
    try:
        with open(f"/proc/{zygote}/task/{zygote}/children", encoding="ascii") as children:
            pids = [int(pid) for pid in children.read().split()]
    except OSError:
        pids = []
    snapshot["live"] = {pid: _stat_cpu(pid)[0] for pid in pids}
    return snapshot


class CpuTime:
    """CPU seconds spent over the measured runs of one row, by process kind.

    Workers: what reaped ones used (all of it, their life is in the zygote's cutime) plus what
    live ones used since the start, minus what those reaped during the run had used before it.
    """

    def __init__(self) -> None:
        self.seconds = {"supervisor": 0.0, "zygote": 0.0, "workers": 0.0}
        self.invocations = 0

    def add(self, start: dict[str, Any], end: dict[str, Any], invocations: int) -> None:
        self.seconds["supervisor"] += end["supervisor"] - start["supervisor"]
        self.seconds["zygote"] += end["zygote"] - start["zygote"]
        workers = end["reaped"] - start["reaped"] + sum(end["live"].values())
        workers -= sum(start["live"].values())
        self.seconds["workers"] += workers
        self.invocations += invocations

    def per_invocation(self) -> dict[str, float]:
        n = max(self.invocations, 1)
        return {kind: seconds * 1000 / n for kind, seconds in self.seconds.items()}


def top_functions(profile: cProfile.Profile, count: int = 8) -> list[str]:
    """The supervisor's busiest functions by own time, waiting in epoll left out."""
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    rows = []
    for (file, line, name), (_, calls, own, _cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if name != "<method 'poll' of 'select.epoll' objects>":
            rows.append((own, calls, f"{Path(file).name}:{line}({name})"))
    rows.sort(reverse=True)
    return [f"{own * 1000:8.1f} ms {calls:7d}x {where}" for own, calls, where in rows[:count]]


# ---------------------------------------------------------------------------- memory


def smaps_rollup(pid: int) -> dict[str, int]:
    """Rss, Pss, Private_Clean and Private_Dirty of ``pid`` in bytes."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
        for line in rollup:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                values[key] = int(rest.split()[0]) * 1024
    values["private"] = values["Private_Clean"] + values["Private_Dirty"]
    return values


async def memory_section(
    policy: EgressPolicy, cases: list[Handler], workers: int
) -> dict[str, Any]:
    """(c): ``workers`` tenants each with a warm idle worker (the realistic handler, 3 calls)."""
    handler = next(h for h in cases if h.key == "realistic")
    async with SandboxRunner(policy=policy, max_workers=max(64, workers)) as runner:
        call = sandbox_call(runner, handler, workers)
        for i in range(3 * workers):
            await call(i)
        await asyncio.sleep(0.5)  # let the spare workers finish starting
        stats = runner.pool.stats()
        pids = [
            pid for i in range(workers) for pid in runner.pool.idle_pids(f"bench-realistic-{i}")
        ]
        per_worker = [smaps_rollup(pid) for pid in pids]
        zygote = smaps_rollup(stats["zygote_pid"])
        supervisor = smaps_rollup(os.getpid())
    private = [w["private"] / MiB for w in per_worker]
    return {
        "workers": len(per_worker),
        "spares_not_counted": stats["spares"],
        "worker_private_mib": {
            "median": statistics.median(private),
            "max": max(private),
            "min": min(private),
        },
        "worker_private_dirty_mib_median": statistics.median(
            w["Private_Dirty"] / MiB for w in per_worker
        ),
        "worker_rss_mib_median": statistics.median(w["Rss"] / MiB for w in per_worker),
        "workers_private_total_mib": sum(private),
        "workers_pss_total_mib": sum(w["Pss"] for w in per_worker) / MiB,
        "zygote_private_mib": zygote["private"] / MiB,
        "zygote_rss_mib": zygote["Rss"] / MiB,
        "supervisor_private_mib": supervisor["private"] / MiB,
        "goal": {"<=5 MiB/worker": verdict(max(private) <= GOALS["idle_worker_mib"])},
    }


# ---------------------------------------------------------------------------- driver


async def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    port = url.rsplit(":", 1)[1]
    policy = EgressPolicy(
        allow_http_hosts=frozenset({f"127.0.0.1:{port}"}),
        max_requests_per_tenant_per_minute=10_000_000,  # the bench is one tenant at 1000s/s
    )
    cases = handlers(url)
    http = SyncHttp()
    results: dict[str, Any] = {}
    try:
        async with SandboxRunner(policy=policy, max_workers=args.max_workers) as runner:
            results["seccomp"] = runner.pool.stats()["seccomp"]
            results["latency"] = await latency_section(runner, cases, http, args)
            tput_cases = [h for h in cases if h.key in args.throughput_handlers]
            results["throughput"] = await throughput_section(runner, policy, tput_cases, http, args)
        results["memory"] = await memory_section(policy, cases, args.memory_workers)
    finally:
        http.close()
    return results


def environment(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": len(os.sched_getaffinity(0)),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
        "in_flight": args.in_flight,
        "max_workers": args.max_workers,
        "warm_pool": args.warm_pool,
        "rounds": args.rounds,
        "quick": args.quick,
    }


def print_table(results: dict[str, Any]) -> None:
    env = results["environment"]
    print(
        f"python {env['python']}, {env['cpus']} CPUs, loadavg {' '.join(env['loadavg_start'])}"
        f" -> {' '.join(env['loadavg_end'])}, seccomp {results['seccomp']['active']},"
        f" rounds {env['rounds']}"
    )
    print("\n(a) round trip, warm, one at a time (ms); x = variant / floor")
    print(
        f"{'handler':<16}{'variant':<16}{'n':>7}{'p50':>9}{'p99':>9}{'x p50':>8}{'x p99':>8}  goal"
    )
    for key, rows in results["latency"].items():
        for name, row in rows.items():
            goal = " ".join(f"{g} {v}" for g, v in row.get("goal", {}).items())
            print(
                f"{key:<16}{name:<16}{row['n']:>7}{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}"
                f"{row['x_p50']:>8.1f}{row['x_p99']:>8.1f}  {goal}"
            )
    print(
        f"\n(b) throughput, {env['in_flight']} in flight, max_workers {env['max_workers']}"
        " (floor: one thread, back to back); x = inv/s / floor inv/s;"
        " @1 = one in flight; wN = pool with max_workers N"
    )
    print(
        f"{'handler':<16}{'tenants':<12}{'inv/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'x floor':>9}"
        f"  {'spawn/evict':<13}{'CPU ms/inv sup+zyg+wrk':<25}goal"
    )
    profiles: list[str] = []
    for key, rows in results["throughput"].items():
        for tenants, row in rows.items():
            goal = " ".join(f"{g} {v}" for g, v in row.get("goal", {}).items())
            pool = row.get("pool")
            churn = f"{pool['spawned']}/{pool['evicted']}" if pool else ""
            cpu = row.get("cpu_ms_per_inv")
            split = (
                f"{cpu['supervisor']:.2f}+{cpu['zygote']:.2f}+{cpu['workers']:.2f}" if cpu else ""
            )
            print(
                f"{key:<16}{tenants:<12}{row['per_s']:>9.0f}{row['p50_ms']:>9.3f}"
                f"{row['p99_ms']:>9.3f}{row['x_floor']:>9.3f}  {churn:<13}{split:<25}{goal}"
            )
            if row.get("profile"):
                profiles += [f"{key} {tenants}:", *(f"  {line}" for line in row["profile"])]
    if profiles:
        print("\nsupervisor profile (cProfile, own time, epoll waits left out)")
        print("\n".join(profiles))
    mem = results["memory"]
    w = mem["worker_private_mib"]
    goal = " ".join(f"{g} {v}" for g, v in mem["goal"].items())
    print("\n(c) private memory (Private_Clean + Private_Dirty, smaps_rollup)")
    print(
        f"idle worker ({mem['workers']} tenants): median {w['median']:.2f} MiB, max {w['max']:.2f},"
        f" min {w['min']:.2f} (dirty {mem['worker_private_dirty_mib_median']:.2f}, Rss"
        f" {mem['worker_rss_mib_median']:.1f})  {goal}"
    )
    print(
        f"all {mem['workers']} workers: private {mem['workers_private_total_mib']:.1f} MiB,"
        f" Pss {mem['workers_pss_total_mib']:.1f} MiB; zygote private"
        f" {mem['zygote_private_mib']:.1f} MiB (Rss {mem['zygote_rss_mib']:.1f});"
        f" supervisor (this process) private {mem['supervisor_private_mib']:.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (smoke test)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--rounds", type=int, default=None, help="default 3 (quick: 1)")
    parser.add_argument("--in-flight", type=int, default=8, help="throughput concurrency")
    parser.add_argument(
        "--max-workers", type=int, default=64, help="the pool's max_workers (Settings default)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the supervisor in the 1,000-tenant rows"
    )
    parser.add_argument(
        "--warm-pool",
        type=int,
        default=None,
        help="extra 1,000-tenant row on a pool of this max_workers; 0: none"
        " (default 1024, quick: 0)",
    )
    args = parser.parse_args()
    quick = args.quick
    args.rounds = args.rounds or (1 if quick else 3)
    if args.warm_pool is None:
        args.warm_pool = 0 if quick else 1024
    args.warmup = 50 if quick else 300
    args.latency = 200 if quick else 2000
    args.throughput = 500 if quick else 5000
    args.throughput_many = 200 if quick else 2000
    args.throughput_handlers = ("trivial", "realistic")
    args.memory_workers = 50
    env = environment(args)
    with FakeTwilio() as url:
        results = asyncio.run(run(url, args))
    env["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    results = {"environment": env, **results}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
