"""A phone template's ``content.from`` reaches the tenant's custom-phone-provider action as
Auth0's ``event.notification.from``, end to end: the action, the template and the ``custom``
provider made through the API, a delivery through the real pipeline and sandbox, and what
the action saw posted to a stub on 127.0.0.1. Also for both ``/try`` endpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.api.app import create_app
from runtime.api.tokens import SigningKeys
from tests.api.conftest import api_settings, create_tenants, new_tenant
from tests.support.stub_server import StubServer

SCOPES = [
    "create:actions",
    "update:actions",
    "create:phone_providers",
    "create:phone_templates",
    "update:phone_templates",
    "create:phone_messages",
]
CPP = "custom-phone-provider"
SENDER = "+15555550100"
SHOW_FROM = """\
def on_execute_custom_phone_provider(event, api):
    n = event.notification
    api.http.post(event.secrets.URL, json={"has_from": "from" in n, "from": n.get("from"),
                                          "type": n.message_type})
"""


def ok(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        server.respond(200, {"id": "sent"})
        yield server


@pytest.fixture
def api(tmp_path: Path, stub: StubServer) -> Iterator[TestClient]:
    """An app whose actions may reach the stub, a tenant of its own, and its token."""
    host = stub.url.removeprefix("http://")
    settings = api_settings(
        tmp_path / "data", sandbox_allow_http_hosts=[host], sandbox_timeout=20, attempt_timeout=20
    )
    tenant = new_tenant()
    create_tenants(settings, tenant)
    token = SigningKeys.from_settings(settings).issue(tenant=tenant, scopes=SCOPES, ttl=3600)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


@pytest.fixture
def provider(api: TestClient, stub: StubServer) -> dict[str, Any]:
    """SHOW_FROM deployed and bound to custom-phone-provider, then the ``custom`` provider."""
    action = {
        "name": "show-from",
        "supported_triggers": [{"id": CPP, "version": "v1"}],
        "code": SHOW_FROM,
        "secrets": [{"name": "URL", "value": f"{stub.url}/send"}],
        "deploy": True,
    }
    action_id = ok(api.post("/api/v2/actions/actions", json=action), 201)["id"]
    binding = {"bindings": [{"ref": {"type": "action_id", "value": action_id}}]}
    ok(api.patch(f"/api/v2/actions/triggers/{CPP}/bindings", json=binding), 200)
    custom = {"name": "custom", "credentials": {}, "configuration": {"delivery_methods": ["text"]}}
    return ok(api.post("/api/v2/branding/phone/providers", json=custom), 201)


def template(api: TestClient, kind: str, **content: Any) -> dict[str, Any]:
    body = {"type": kind, "content": content} if content else {"type": kind}
    return ok(api.post("/api/v2/branding/phone/templates", json=body), 201)


def seen(stub: StubServer) -> dict[str, Any]:
    """What the action posted about the last event, the stub's record then cleared."""
    last: dict[str, Any] = json.loads(stub.requests[-1].body)
    stub.requests.clear()
    return last


def send(api: TestClient, purpose: str) -> None:
    body = {"to": "+14155552671", "code": "246810", "purpose": purpose}
    report = ok(api.post("/api/v2/phone/messages", json=body), 200)
    assert report["status"] == "delivered", report["attempts"][0].get("error")


def test_the_templates_from_is_notification_from_and_omitted_without_one(
    api: TestClient, stub: StubServer, provider: dict[str, Any]
) -> None:
    verify = template(api, "otp_verify", **{"from": SENDER})
    template(api, "otp_enroll")  # no from
    send(api, "verification")
    assert seen(stub) == {"has_from": True, "from": SENDER, "type": "otp_verify"}
    send(api, "enrollment")
    assert seen(stub) == {"has_from": False, "from": None, "type": "otp_enroll"}
    off = api.patch(f"/api/v2/branding/phone/templates/{verify['id']}", json={"disabled": True})
    ok(off, 200)
    send(api, "verification")  # a disabled template's from is not used
    assert seen(stub)["has_from"] is False


def test_both_try_endpoints_carry_the_from(
    api: TestClient, stub: StubServer, provider: dict[str, Any]
) -> None:
    verify = template(api, "otp_verify", **{"from": SENDER})
    tried = api.post(
        f"/api/v2/branding/phone/providers/{provider['id']}/try", json={"to": "+14155552671"}
    )
    assert ok(tried, 202)["code"] == 0, tried.text
    assert seen(stub)["from"] == SENDER  # a provider's test message is a verification
    tried = api.post(
        f"/api/v2/branding/phone/templates/{verify['id']}/try", json={"to": "+14155552671"}
    )
    assert ok(tried, 202)["status"] == "delivered", tried.text
    assert seen(stub)["from"] == SENDER
