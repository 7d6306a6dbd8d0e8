"""A child process that sends a burst of codes through a real pipeline, for the shutdown tests.

Usage: python -m tests.support.burst DATA_DIR COUNT CONCURRENCY. Every tenant message goes to
the outbox; each request carries the idempotency key ``burst-N``. Prints ``ready`` once the
pipeline is built, then one ``report ID KEY STATUS REASON`` line per report as it returns
(flushed at once), and ``drained`` after a SIGTERM/SIGINT drain and close.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from runtime import PhoneMessageRequest
from runtime.delivery import Pipeline
from runtime.settings import Settings
from runtime.tenants import TomlTenantDirectory


async def main(data_dir: Path, count: int, concurrency: int) -> None:
    settings = Settings(_env_file=None, data_dir=data_dir, outbox_cap=100_000)
    tenants = TomlTenantDirectory.from_mapping(
        {"tenants": {"acme": {"provider": "outbox"}}}, environ={}
    )
    async with Pipeline.from_settings(settings, tenants=tenants, load_entrypoints=False) as p:
        p.handle_signals()
        print("ready", flush=True)
        lanes = asyncio.Semaphore(concurrency)

        async def one(number: int) -> None:
            async with lanes:
                request = PhoneMessageRequest.create(
                    tenant="acme",
                    recipient="+14155552671",
                    code="123456",
                    idempotency_key=f"burst-{number}",
                )
                report = await p.deliver(request)
                print(
                    "report", report.id, f"burst-{number}", report.status, report.reason, flush=True
                )

        await asyncio.gather(*(one(n) for n in range(count)))
    print("drained", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
