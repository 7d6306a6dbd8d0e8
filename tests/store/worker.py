"""A child process for the store's multi-process tests: ``python -m tests.store.worker JOB URL
ARGS``. It prints ``ready`` once imported and connected, waits for a line on stdin (so all
children start their work together), does the job and prints one JSON result line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from runtime.errors import ProviderError
from runtime.providers import PhoneMessage
from runtime.store import DefaultSenderUsage, create_engine_for, migrate


def _go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def migrate_job(url: str) -> dict[str, Any]:
    engine = create_engine_for(url, timeout=30)  # 20 processes share 2 loaded cores
    _go()
    migrate(engine)
    return {"ok": True}


def reserve_job(url: str, tenant: str, cap: int, tries: int) -> dict[str, Any]:
    engine = create_engine_for(url, timeout=30)
    migrate(engine)
    usage = DefaultSenderUsage(engine)
    usage.used(tenant)  # connected before the start line
    _go()
    return {"won": sum(usage.reserve(tenant, cap) for _ in range(tries))}


def outbox_job(url: str, tenant: str, cap: int, tries: int) -> dict[str, Any]:
    from plugins.outbox import OutboxProvider

    outbox = OutboxProvider(url, cap, timeout=30)
    outbox.messages(tenant, 1)  # migrated and connected before the start line
    _go()

    async def send_all() -> dict[str, Any]:
        stored, refused = 0, []
        for i in range(tries):
            message = PhoneMessage(
                id=f"m{i}",
                tenant=tenant,
                recipient="+14155552671",
                channel="sms",
                purpose="verification",
                locale="en",
                code="123456",
                text="Your code is 123456",
                timeout=60,
            )
            try:
                await outbox.send(message, None, None)
                stored += 1
            except ProviderError as exc:
                refused.append(exc.code)
        await outbox.aclose()
        return {"stored": stored, "refused": refused}

    return asyncio.run(send_all())


JOBS: dict[str, Callable[..., Any]] = {
    "migrate": migrate_job,
    "reserve": reserve_job,
    "outbox": outbox_job,
}

if __name__ == "__main__":
    job, url, *rest = sys.argv[1:]
    args: list[Any] = [url, *(int(a) if a.isdigit() else a for a in rest)]
    print(json.dumps(JOBS[job](*args)), flush=True)
