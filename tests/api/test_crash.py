"""Crash safety of the service: SIGKILL ``phone-actions serve`` in the middle of a burst of
deliveries with idempotency keys, start it again on the same data, and check the books.

- Every report a client received has its log event (by delivery id) and its key's record
  holding that report; every log line and every record is whole.
- The outbox holds exactly one message for each received report, and never two for a key.
- Sending every key again after the restart sends nothing new for a key that was answered
  or claimed before the kill (a replay, or a refusal that sends nothing); only a key the dead
  process never claimed may send now, once.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from plugins.outbox import OutboxProvider
from runtime.api.tokens import SigningKeys
from runtime.events import DeliveryReport
from runtime.store.db import create_engine_for
from runtime.store.idempotency import IdempotencyStore
from tests.api.conftest import api_settings, create_tenants, new_tenant
from tests.api.processes import READY, ServiceProcess

PHONE_ACTIONS = str(Path(sys.executable).with_name("phone-actions"))
CODE = re.compile(r"\b7\d{5}\b")
CLIENTS = 16
KILL_AFTER = 60  # reports received before the kill: the burst is well under way
ENV = {
    "PHONE_ACTIONS_DEFAULT_SENDER_CAP": "100000",  # the outbox serves the whole burst
    "PHONE_ACTIONS_OUTBOX_CAP": "100000",
    "PHONE_ACTIONS_IDEMPOTENCY_WAIT": "0.2",  # a key left pending is refused quickly
}


def code_of(n: int) -> str:
    return f"{700000 + n}"


def codes(outbox: OutboxProvider) -> Counter[str]:
    """How many stored messages carry each code (every code of this test is 7xxxxx)."""
    found = (CODE.search(m.text) for m in outbox.messages())
    return Counter(m.group(0) for m in found if m is not None)


async def burst(url: str, token: str, pid: int) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Send keys k-0, k-1, ... from CLIENTS clients; SIGKILL the service's process group once
    KILL_AFTER reports came back. The reports received by key, and every key sent."""
    received: dict[str, dict[str, Any]] = {}
    sent: set[str] = set()
    counter = iter(range(10**6))
    killed = asyncio.Event()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:

        async def worker() -> None:
            while not killed.is_set():
                n = next(counter)
                key = f"k-{n}"
                body = {"to": "+14155552671", "code": code_of(n), "idempotency_key": key}
                sent.add(key)
                try:
                    response = await client.post("/api/v2/phone/messages", json=body)
                except httpx.TransportError:
                    return  # the service is gone: this request's fate is checked later
                if response.status_code == 200:
                    received[key] = response.json()
                if len(received) >= KILL_AFTER and not killed.is_set():
                    killed.set()
                    os.killpg(pid, signal.SIGKILL)

        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return received, sent


def test_sigkill_mid_burst_loses_nothing_and_never_sends_twice(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = api_settings(data_dir)
    tenant = new_tenant()
    create_tenants(settings, tenant)
    token = SigningKeys.from_settings(settings).issue(
        tenant=tenant, scopes=["create:phone_messages"], ttl=3600
    )
    command = [PHONE_ACTIONS, "serve", "--port", "0"]
    first = ServiceProcess(command, data_dir, **ENV)
    try:
        url = first.wait_for(READY).group(1)
        received, sent = asyncio.run(burst(url, token, first.process.pid))
        first.process.wait(timeout=60)
    finally:
        first.kill()
    assert first.process.returncode == -signal.SIGKILL
    assert len(received) >= KILL_AFTER
    assert all(r["status"] == "stored" for r in received.values()), received

    database = settings.resolved_database_url
    engine = create_engine_for(database, timeout=5)
    records = IdempotencyStore(engine)
    try:
        # every received report: its log event, its key's record with that very report
        lines = settings.resolved_log_file.read_text().splitlines()
        events = [json.loads(line) for line in lines]  # every line whole
        logged = Counter(e["details"]["delivery_id"] for e in events)
        for key, report in received.items():
            assert logged[report["id"]] >= 1, f"{key}: no log event"
            claim = records.get(tenant, key)
            assert claim is not None, f"{key}: no record"
            assert claim.report is not None, f"{key}: a record without its report"
            assert DeliveryReport.model_validate_json(claim.report).id == report["id"]
        # no half-written record: each is pending or holds a whole report
        for key in sent:
            claim = records.get(tenant, key)
            if claim is not None and claim.report is not None:
                DeliveryReport.model_validate_json(claim.report)
        outbox = OutboxProvider(database, timeout=5)
        before = codes(outbox)
        for key in received:
            assert before[code_of(int(key[2:]))] == 1, f"{key}: not exactly one message"
        assert max(before.values()) == 1
        claimed = {k for k in sent if records.get(tenant, k) is not None}
    finally:
        engine.dispose()

    # restart on the same data; resend every key
    second = ServiceProcess(command, data_dir, **ENV)
    try:
        url = second.wait_for(READY).group(1)
        headers = {"Authorization": f"Bearer {token}"}
        again: dict[str, dict[str, Any]] = {}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            for key in sorted(sent):
                body = {"to": "+14155552671", "code": code_of(int(key[2:])), "idempotency_key": key}
                response = client.post("/api/v2/phone/messages", json=body)
                assert response.status_code == 200, response.text
                again[key] = response.json()
        second.stop()
    finally:
        second.kill()
    for key, report in received.items():
        assert again[key]["replayed"] is True, again[key]
        assert again[key]["id"] == report["id"]
    after = codes(OutboxProvider(database, timeout=5))
    for key in sent:
        code = code_of(int(key[2:]))
        assert after[code] <= 1, f"{key} sent twice"
        if key in claimed:  # answered or claimed before the kill: nothing new now
            assert after[code] == before[code], (key, again[key])
    print(
        f"sent {len(sent)} keys, {len(received)} answered before SIGKILL, "
        f"{len(claimed) - len(received)} claimed but unanswered, "
        f"{len(sent) - len(claimed)} never claimed"
    )
