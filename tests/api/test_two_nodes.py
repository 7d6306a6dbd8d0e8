"""Several nodes: two ``phone-actions serve`` processes on one PostgreSQL database serve the
same tenants. A deploy on one is live on the other within a second (each node polls its
tenants' config versions every 0.5 s: docs/service.md, "Several nodes"), and an idempotency
key used on both sends once."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.api.tokens import SigningKeys
from tests.api.conftest import api_settings, create_tenants, new_tenant
from tests.api.processes import READY, ServiceProcess
from tests.support.stub_server import StubServer

PHONE_ACTIONS = str(Path(sys.executable).with_name("phone-actions"))
SCOPES = ["read:actions", "create:actions", "update:actions", "update:guardian_factors"]
SEND = ["create:phone_messages"]
LIVE_WITHIN = 1.0
"""The promise: a deploy is live on the other node within a second (0.5 s poll + a query)."""
LOADED_MACHINE_BOUND = 5.0
"""What the test asserts: 5x the promise, for a loaded 2-core CI machine where a poll can be
late; the measured figure is printed, and docs/service.md states the design bound."""


def code(version: str) -> str:
    return (
        "def on_execute_send_phone_message(event, api):\n"
        "    return api.http.post(event['secrets']['URL'], json={\n"
        f"        'version': '{version}', 'text': event['message_options']['text']}})\n"
    )


@pytest.fixture
def nodes(
    tmp_path: Path, postgres_url: str
) -> Iterator[tuple[list[httpx.Client], str, StubServer]]:
    url = postgres_url
    first, second = tmp_path / "node-a", tmp_path / "node-b"
    settings = api_settings(first, database_url=url)
    tenant = new_tenant()
    create_tenants(settings, tenant)  # makes node A's master.key
    keys = SigningKeys.from_settings(settings)  # and its signing.key
    second.mkdir()
    for name in ("master.key", "signing.key"):  # the nodes share their keys
        shutil.copy2(first / name, second / name)
    token = keys.issue(tenant=tenant, scopes=SCOPES + SEND, ttl=3600)
    with StubServer() as provider:
        provider.respond(200, {"id": "m-1"})
        env = {
            "PHONE_ACTIONS_DATABASE_URL": url,
            "PHONE_ACTIONS_SANDBOX_ALLOW_HTTP_HOSTS": json.dumps(
                [provider.url.removeprefix("http://")]
            ),
        }
        processes = [
            ServiceProcess([PHONE_ACTIONS, "serve", "--port", "0"], d, **env)
            for d in (first, second)
        ]
        clients: list[httpx.Client] = []
        try:
            for process in processes:
                base = process.wait_for(READY).group(1)
                clients.append(
                    httpx.Client(
                        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
                    )
                )
            yield clients, tenant, provider
        finally:
            for client in clients:
                client.close()
            for process in processes:
                process.kill()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def versions_seen(provider: StubServer) -> list[str]:
    return [json.loads(r.body)["version"] for r in provider.requests]


def test_a_deploy_on_one_node_is_live_on_the_other(
    nodes: tuple[list[httpx.Client], str, StubServer],
) -> None:
    (a, b), _tenant, provider = nodes
    url = f"{provider.url}/send"
    action = ok(
        a.post(
            "/api/v2/actions/actions",
            json={
                "name": "two-nodes",
                "supported_triggers": [{"id": "send-phone-message", "version": "v2"}],
                "code": code("v1"),
                "secrets": [{"name": "URL", "value": url}],
                "deploy": True,
            },
        ),
        201,
    )
    bind = {"bindings": [{"ref": {"type": "action_id", "value": action["id"]}}]}
    ok(a.patch("/api/v2/actions/triggers/send-phone-message/bindings", json=bind))
    select = {"provider": "phone-message-hook"}
    ok(a.put("/api/v2/guardian/factors/phone/selected-provider", json=select))

    def deliver(client: httpx.Client, code: str, key: str | None = None) -> dict[str, Any]:
        body = {"to": "+14155552671", "code": code, "idempotency_key": key}
        report: dict[str, Any] = ok(client.post("/api/v2/phone/messages", json=body))
        return report

    # node B serves the tenant node A configured (after at most one poll)
    deadline = time.monotonic() + LOADED_MACHINE_BOUND
    while deliver(b, "111111")["status"] != "delivered":
        assert time.monotonic() < deadline, "node B never served the configuration of node A"
    assert versions_seen(provider)[-1] == "v1"

    ok(a.patch(f"/api/v2/actions/actions/{action['id']}", json={"code": code("v2")}))
    ok(a.post(f"/api/v2/actions/actions/{action['id']}/deploy"), 202)
    deployed = time.monotonic()
    assert deliver(a, "222222")["status"] == "delivered"  # the writing node: at once
    assert versions_seen(provider)[-1] == "v2"
    while True:
        report = deliver(b, "333333")
        assert report["status"] == "delivered", report
        if versions_seen(provider)[-1] == "v2":
            break
        assert time.monotonic() - deployed < LOADED_MACHINE_BOUND, "the deploy never reached B"
    took = time.monotonic() - deployed
    print(f"deploy on node A live on node B after {took * 1000:.0f} ms (promise: {LIVE_WITHIN} s)")

    # one idempotency key, both nodes: one message
    before = len(provider.requests)
    first = deliver(a, "444444", key="two-nodes-key")
    again = deliver(b, "444444", key="two-nodes-key")
    assert first["status"] == "delivered"
    assert again["replayed"] is True
    assert again["id"] == first["id"]
    assert len(provider.requests) == before + 1
