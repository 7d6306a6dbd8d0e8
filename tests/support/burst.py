"""A child process that sends a burst of codes through a real pipeline, for the shutdown tests.

Usage: python -m tests.support.burst DATA_DIR COUNT CONCURRENCY. Every tenant message goes to
the outbox (or, with ``BURST_TWILIO_URL`` set, to the Twilio API there, never falling back);
each request carries the idempotency key ``burst-N``. Prints ``ready`` once the pipeline is
built, then one ``report ID KEY STATUS REASON`` line per report as it returns
(flushed at once), and ``drained`` after a SIGTERM/SIGINT drain and close.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from runtime import PhoneMessageRequest
from runtime.delivery import Pipeline
from runtime.settings import Settings
from runtime.tenants import TomlTenantDirectory


async def main(data_dir: Path, count: int, concurrency: int) -> None:
    settings = Settings(_env_file=None, data_dir=data_dir, outbox_cap=100_000)
    gateway = os.environ.get("BURST_TWILIO_URL")  # a Twilio that holds every request
    table: dict[str, object] = {"provider": "outbox"}
    if gateway:
        table = {
            "provider": "twilio",
            "fallback": "never",
            "provider_settings": {"from_number": "+15017122661", "base_url": gateway},
            "credentials_env": {"account_sid": "SID", "auth_token": "TOKEN"},
        }
    tenants = TomlTenantDirectory.from_mapping(
        {"tenants": {"acme": table}}, environ={"SID": "AC" + "0" * 32, "TOKEN": "token"}
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
