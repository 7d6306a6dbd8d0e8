"""The Verify API end to end with a real sender: Twilio (its API stubbed on 127.0.0.1) and a
tenant's action run in the sandbox (its HTTP call to a stub on 127.0.0.1). The code the user
receives is read from what reached the stub, and confirms the enrollment and the challenge."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.api.app import create_app
from runtime.api.tokens import SigningKeys
from runtime.store.crypto import Keyring
from runtime.store.db import create_engine_for
from runtime.store.service import ServiceStore
from tests.api.conftest import api_settings, create_tenants, new_tenant
from tests.support.stub_server import RecordedRequest, StubServer
from tests.twilio.conftest import ACCOUNT_SID, AUTH_TOKEN, call_resource, message_resource

SCOPES = [
    "create:phone_enrollments",
    "create:phone_challenges",
    "create:actions",
    "update:actions",
    "update:guardian_factors",
    "create:phone_providers",
]
PHONE = "+14155552671"
ACTION = """\
def on_execute_send_phone_message(event, api):
    options = event['message_options']
    api.http.post(event['secrets']['URL'], json={'to': options['recipient'],
                  'text': options['text'], 'type': options['message_type']})
"""


def ok(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def twilio_answer(request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
    if request.path.endswith("/Calls.json"):
        return 201, call_resource(), {}
    return 201, message_resource(), {}


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


@pytest.fixture
def client(tmp_path: Path, stub: StubServer) -> Iterator[tuple[TestClient, str]]:
    data_dir = tmp_path / "data"
    host = stub.url.removeprefix("http://")
    settings = api_settings(
        data_dir, sandbox_allow_http_hosts=[host], sandbox_timeout=20, attempt_timeout=20
    )
    tenant = new_tenant()
    create_tenants(settings, tenant)
    token = SigningKeys.from_settings(settings).issue(tenant=tenant, scopes=SCOPES, ttl=3600)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client, tenant


def code_in(text: str) -> str:
    digits = re.sub(r"[^0-9]", "", text)
    assert len(digits) == 6, text
    return digits


def test_enrollment_and_challenge_through_twilio(
    client: tuple[TestClient, str], stub: StubServer, tmp_path: Path
) -> None:
    api, tenant = client
    stub.respond_with(twilio_answer)
    # Twilio's API is reached at the tenant's base_url (an imported setting): the stub
    engine = create_engine_for(f"sqlite:///{tmp_path / 'data' / 'phone-actions.sqlite3'}")
    store = ServiceStore(engine, Keyring.load(None, tmp_path / "data"))
    store.tenants.update(
        tenant, settings={"provider": "twilio", "provider_settings": {"base_url": stub.url}}
    )
    engine.dispose()
    provider = {
        "name": "twilio",
        "credentials": {"auth_token": AUTH_TOKEN},
        "configuration": {
            "sid": ACCOUNT_SID,
            "default_from": "+14155550100",
            "delivery_methods": ["text", "voice"],
        },
    }
    ok(api.post("/api/v2/branding/phone/providers", json=provider), 201)
    types = {"message_types": ["sms", "voice"]}
    ok(api.put("/api/v2/guardian/factors/phone/message-types", json=types), 200)

    made = ok(
        api.post("/api/v2/phone/enrollments", json={"user_id": "auth0|tw", "phone_number": PHONE}),
        201,
    )
    assert made["delivery"]["status"] == "delivered"
    assert made["delivery"]["delivered_by"] == "twilio"
    (sms,) = stub.requests
    assert sms.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert sms.form["To"] == [PHONE]
    code = code_in(sms.form["Body"][0].split(" is your")[0])
    confirm = f"/api/v2/phone/enrollments/{made['id']}/confirm"
    assert ok(api.post(confirm, json={"code": code}), 200)["status"] == "confirmed"

    challenge = ok(
        api.post(
            "/api/v2/phone/challenges",
            json={"user_id": "auth0|tw", "channel": "voice"},
            headers={"x-request-language": "es"},
        ),
        201,
    )
    call = stub.requests[-1]
    assert call.path.endswith("/Calls.json")
    twiml = call.form["Twiml"][0]
    assert 'language="es-ES"' in twiml
    spoken = re.search(r"es ((?:\d\. ){5}\d)", twiml)
    assert spoken, twiml  # the code spelled digit by digit, with a pause after each
    verify = f"/api/v2/phone/challenges/{challenge['id']}/verify"
    assert ok(api.post(verify, json={"code": code_in(spoken.group(1))}), 200)["status"] == (
        "verified"
    )


def test_enrollment_and_challenge_through_a_tenant_action(
    client: tuple[TestClient, str], stub: StubServer
) -> None:
    api, _ = client
    stub.respond(200, {"id": "msg-1"})
    action = ok(
        api.post(
            "/api/v2/actions/actions",
            json={
                "name": "verify-sms",
                "supported_triggers": [{"id": "send-phone-message", "version": "v2"}],
                "code": ACTION,
                "secrets": [{"name": "URL", "value": f"{stub.url}/send"}],
                "deploy": True,
            },
        ),
        201,
    )
    binding = {"bindings": [{"ref": {"type": "action_id", "value": action["id"]}}]}
    ok(api.patch("/api/v2/actions/triggers/send-phone-message/bindings", json=binding), 200)
    chosen = {"provider": "phone-message-hook"}
    ok(api.put("/api/v2/guardian/factors/phone/selected-provider", json=chosen), 200)

    made = ok(
        api.post(
            "/api/v2/phone/enrollments",
            json={"user_id": "auth0|act", "phone_number": PHONE},
            headers={"Accept-Language": "fr-FR,fr;q=0.9"},
        ),
        201,
    )
    assert made["delivery"]["status"] == "delivered", made
    (sent,) = stub.requests
    body = json.loads(sent.body)
    text = body["text"]
    assert body["to"] == PHONE
    assert "est votre code de vérification" in text
    code = code_in(text.split(" ")[0])
    confirm = f"/api/v2/phone/enrollments/{made['id']}/confirm"
    assert ok(api.post(confirm, json={"code": code}), 200)["status"] == "confirmed"

    challenge = ok(api.post("/api/v2/phone/challenges", json={"user_id": "auth0|act"}), 201)
    second = json.loads(stub.requests[-1].body)["text"]
    verify = f"/api/v2/phone/challenges/{challenge['id']}/verify"
    assert ok(api.post(verify, json={"code": code_in(second.split(" ")[0])}), 200)["status"] == (
        "verified"
    )
