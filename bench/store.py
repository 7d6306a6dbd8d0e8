"""Cost per idempotency-store call (claim, complete) on SQLite and PostgreSQL.

``python -m bench.store [--postgres URL] [-n N]``: each call timed directly on the calling
thread (wall and process CPU, µs) and through a StoreExecutor, one at a time and 50 in flight
(wall per call, and the event loop thread's CPU per call: what the pipeline pays).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from runtime.store import IdempotencyStore, StoreExecutor, create_engine_for, migrate


def _direct(store: IdempotencyStore, n: int) -> dict[str, float]:
    keys = [uuid.uuid4().hex for _ in range(n)]
    out: dict[str, float] = {}
    for name, call in (
        ("claim", lambda k: store.claim("bench", k, "d" * 64)),
        ("complete", lambda k: store.complete("bench", k, '{"status":"delivered"}' * 20)),
    ):
        wall, cpu = time.perf_counter(), time.process_time()
        for k in keys:
            call(k)
        out[name] = (time.perf_counter() - wall) / n * 1e6
        out[f"{name} cpu"] = (time.process_time() - cpu) / n * 1e6
    return out


async def _through_executor(store: IdempotencyStore, n: int, inflight: int) -> dict[str, float]:
    executor = StoreExecutor()
    keys = [uuid.uuid4().hex for _ in range(n)]
    out: dict[str, float] = {}
    lanes = asyncio.Semaphore(inflight)
    for name, fn, extra in (
        ("claim", store.claim, "d" * 64),
        ("complete", store.complete, '{"status":"delivered"}' * 20),
    ):

        async def one(key: str, fn: object = fn, extra: str = extra) -> None:
            async with lanes:
                await executor.run(fn, "bench", key, extra, timeout=10)  # type: ignore[arg-type]

        wall, cpu = time.perf_counter(), time.thread_time()
        await asyncio.gather(*(one(k) for k in keys))
        out[name] = (time.perf_counter() - wall) / n * 1e6
        out[f"{name} loop cpu"] = (time.thread_time() - cpu) / n * 1e6
    executor.shutdown()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default=None)
    parser.add_argument("-n", type=int, default=3000)
    args = parser.parse_args()
    urls = {"sqlite": f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.sqlite3'}"}
    if args.postgres:
        urls["postgresql"] = args.postgres
    for name, url in urls.items():
        engine = create_engine_for(url)
        migrate(engine)
        store = IdempotencyStore(engine)
        _direct(store, 200)  # warm up (PostgreSQL prepares after 5 runs)
        print(name, "direct", {k: round(v, 1) for k, v in _direct(store, args.n).items()})
        for inflight in (1, 50):
            got = asyncio.run(_through_executor(store, args.n, inflight))
            print(name, f"executor {inflight} in flight", {k: round(v, 1) for k, v in got.items()})
        store.close()
        engine.dispose()


if __name__ == "__main__":
    main()
