"""Deliveries per second with one active log stream against none, in the same run.

Two pipelines on their own SQLite databases (outbox default sender, the stored log copying the
JSON Lines file on both); one of them has an active log stream to a local aiohttp sink on
127.0.0.1. Rounds alternate between the two so that machine load hits both alike; the goal is
a ratio of at least 0.9 (the stream's work is a batch per ~100 events, off the delivery path).

    .venv/bin/python -m bench.log_streams --count 2000 --in-flight 50 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from aiohttp import web

from runtime.delivery import Pipeline
from runtime.events import PhoneMessageRequest
from runtime.settings import Settings
from runtime.tenants import TomlTenantDirectory


async def _sink() -> tuple[web.AppRunner, str, list[int]]:
    received = [0]

    async def take(request: web.Request) -> web.Response:
        received[0] += (await request.read()).count(b"\n")
        return web.Response()

    app = web.Application()
    app.router.add_post("/logs", take)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/logs", received


def _pipeline(data_dir: Path) -> Pipeline:
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        log_stream_allow_http_hosts=["127.0.0.1"],
        default_sender_cap=10**9,
        outbox_cap=10**9,
    )
    tenants = TomlTenantDirectory.from_mapping({"tenants": {"bench": {}}})
    return Pipeline.from_settings(settings, tenants=tenants, load_entrypoints=False)


async def _round(pipeline: Pipeline, count: int, in_flight: int) -> float:
    numbers = iter(range(count))

    async def worker() -> None:
        for i in numbers:
            report = await pipeline.deliver(
                PhoneMessageRequest(
                    tenant="bench", recipient=f"+1415555{i % 10000:04d}", code=f"{i:06d}"
                )
            )
            if report.status not in ("stored", "delivered"):
                raise RuntimeError(f"{report.reason}: {report.detail}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return count / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    runner, url, received = await _sink()
    with tempfile.TemporaryDirectory() as folder:
        plain, streamed = _pipeline(Path(folder) / "plain"), _pipeline(Path(folder) / "stream")
        for pipeline in (plain, streamed):
            await pipeline.open_store()
            await pipeline.start_background()
        stored = streamed.stored_log
        assert stored is not None
        _, streams = await stored.repositories()
        body = {"type": "http", "sink": {"httpEndpoint": url, "httpContentFormat": "JSONLINES"}}
        streams.create("bench", body)
        await stored.streams.sweep(force=True)
        rates: dict[str, list[float]] = {"none": [], "one stream": []}
        for _ in range(args.rounds):
            rates["none"].append(await _round(plain, args.count, args.in_flight))
            rates["one stream"].append(await _round(streamed, args.count, args.in_flight))
        await plain.aclose()
        await streamed.aclose()
    await runner.cleanup()
    none, one = statistics.median(rates["none"]), statistics.median(rates["one stream"])
    print(
        f"deliveries/s, median of {args.rounds} rounds of {args.count} ({args.in_flight} in flight)"
    )
    print(f"  no log stream:  {none:8.0f}   rounds {[round(r) for r in rates['none']]}")
    print(f"  one log stream: {one:8.0f}   rounds {[round(r) for r in rates['one stream']]}")
    print(f"  ratio: {one / none:.2f}x (goal >= 0.9x); events the sink received: {received[0]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
