"""Several nodes, one set of limits: two ``phone-actions serve`` processes on one PostgreSQL
database and one Redis. A limit set through node A is enforced across both (the 4th message
to a number within the hour is refused whichever node it reaches), and an idempotency key
used on both nodes sends once, its refusal included."""

from __future__ import annotations

import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.api.tokens import SigningKeys
from tests.api.conftest import api_settings, create_tenants, new_tenant
from tests.api.processes import READY, ServiceProcess
from tests.conftest import service_url

PHONE_ACTIONS = str(Path(sys.executable).with_name("phone-actions"))
SCOPES = ["create:phone_messages", "read:attack_protection", "update:attack_protection"]
LOADED_MACHINE_BOUND = 10.0
"""Node B sees node A's change after its next poll (0.5 s); 20x that for a loaded 2-core CI."""


@pytest.fixture
def nodes(tmp_path: Path, postgres_url: str) -> Iterator[list[httpx.Client]]:
    redis_url = service_url("PHONE_ACTIONS_TEST_REDIS_URL", "Redis")
    first, second = tmp_path / "node-a", tmp_path / "node-b"
    settings = api_settings(first, database_url=postgres_url)
    tenant = new_tenant()
    create_tenants(settings, tenant)
    keys = SigningKeys.from_settings(settings)
    second.mkdir()
    for name in ("master.key", "signing.key"):  # the nodes share their keys
        shutil.copy2(first / name, second / name)
    token = keys.issue(tenant=tenant, scopes=SCOPES, ttl=3600)
    env = {"PHONE_ACTIONS_DATABASE_URL": postgres_url, "PHONE_ACTIONS_REDIS_URL": redis_url}
    processes = [
        ServiceProcess([PHONE_ACTIONS, "serve", "--port", "0"], d, **env) for d in (first, second)
    ]
    clients: list[httpx.Client] = []
    try:
        for process in processes:
            base = process.wait_for(READY).group(1)
            headers = {"Authorization": f"Bearer {token}"}
            clients.append(httpx.Client(base_url=base, headers=headers, timeout=60))
        yield clients
    finally:
        for client in clients:
            client.close()
        for process in processes:
            process.kill()


def send(client: httpx.Client, to: str, key: str | None = None) -> dict[str, Any]:
    body = {"to": to, "code": "123456", "idempotency_key": key}
    response = client.post("/api/v2/phone/messages", json=body)
    report: dict[str, Any] = response.json()
    expected = {"rate_limited": 429, "country_blocked": 403}.get(report.get("reason") or "", 200)
    assert response.status_code == expected, response.text
    return report


def test_two_nodes_enforce_one_set_of_limits_and_one_idempotency(
    nodes: list[httpx.Client],
) -> None:
    a, b = nodes
    number = f"+1415555{uuid.uuid4().int % 10000:04d}"  # a number of this run: Redis is kept
    limits = {"recipient": "3/hour", "blocked_countries": ["GB"]}
    assert a.patch("/api/v2/attack-protection/phone-limits", json=limits).status_code == 200
    deadline = time.monotonic() + LOADED_MACHINE_BOUND
    while send(b, "+447400123456")["reason"] != "country_blocked":  # refusals count nowhere
        assert time.monotonic() < deadline, "node B never saw node A's limits"

    reports = [send(node, number) for node in (a, b, a)]
    assert [r["status"] for r in reports] == ["stored"] * 3
    for node in (b, a):
        fourth = send(node, number)
        assert (fourth["status"], fourth["reason"], fourth["limit"]) == (
            "rejected",
            "rate_limited",
            "recipient",
        )
        assert 3500 < fourth["retry_after"] <= 3600

    key = f"k-{uuid.uuid4().hex}"
    refused = send(a, number, key)
    again = send(b, number, key)
    assert refused["reason"] == "rate_limited"
    assert again["replayed"] is True
    assert again["id"] == refused["id"]
