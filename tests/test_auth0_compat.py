"""Auth0's request sequence, unchanged, against a real ``phone-actions serve`` process.

The sequence of the Management API that Auth0's documentation and deployment tools use to
install a custom SMS provider: create an action for send-phone-message, deploy it, bind it,
select the ``phone-message-hook`` provider, enable sms and voice, test the action. Paths,
bodies, statuses and scopes are Auth0's; only the action's code is Python (this runtime's
language) instead of JavaScript. Then a delivery through ``POST /api/v2/phone/messages``
reaches the action, whose HTTP call goes to a stub server on 127.0.0.1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.api.tokens import SigningKeys
from tests.api.conftest import api_settings, create_tenants, new_tenant
from tests.api.processes import READY, ServiceProcess
from tests.support.stub_server import StubServer

PHONE_ACTIONS = str(Path(sys.executable).with_name("phone-actions"))
SCOPES = [
    "read:actions",
    "create:actions",
    "update:actions",
    "read:guardian_factors",
    "update:guardian_factors",
    "create:phone_messages",
]
# The Python twin of Auth0's sample: hand the message to the provider's HTTP API.
CODE = """\
def on_execute_send_phone_message(event, api):
    options = event['message_options']
    return api.http.post(
        event['secrets']['PROVIDER_URL'],
        json={
            'to': options['recipient'],
            'text': options['text'],
            'type': options['message_type'],
        },
        headers={'Authorization': 'Bearer ' + event['secrets']['PROVIDER_TOKEN']},
    )
"""
PROVIDER_TOKEN = "prov-token-8f2e"


@dataclass
class Service:
    url: str
    client: httpx.Client
    provider: StubServer


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    data_dir = tmp_path / "data"
    settings = api_settings(data_dir)
    tenant = new_tenant()
    create_tenants(settings, tenant)
    token = SigningKeys.from_settings(settings).issue(tenant=tenant, scopes=SCOPES, ttl=3600)
    with StubServer() as provider:
        provider.respond(200, {"id": "msg-0001", "status": "accepted"})
        host = provider.url.removeprefix("http://")
        process = ServiceProcess(
            [PHONE_ACTIONS, "serve", "--port", "0"],
            data_dir,
            PHONE_ACTIONS_SANDBOX_ALLOW_HTTP_HOSTS=json.dumps([host]),
        )
        try:
            url = process.wait_for(READY).group(1)
            headers = {"Authorization": f"Bearer {token}"}
            # generous: the first action run starts the sandbox on a loaded 2-core machine
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                yield Service(url, client, provider)
        finally:
            process.kill()


def ok(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def test_auth0s_sequence_installs_a_custom_sms_provider_that_delivers(service: Service) -> None:
    api = service.client
    provider_url = f"{service.provider.url}/messages"

    # 1. POST /api/v2/actions/actions (Auth0's body; the code in Python)
    action = ok(
        api.post(
            "/api/v2/actions/actions",
            json={
                "name": "custom-sms",
                "supported_triggers": [{"id": "send-phone-message", "version": "v2"}],
                "code": CODE,
                "dependencies": [],
                "secrets": [
                    {"name": "PROVIDER_URL", "value": provider_url},
                    {"name": "PROVIDER_TOKEN", "value": PROVIDER_TOKEN},
                ],
                "deploy": False,
            },
        ),
        201,
    )
    assert PROVIDER_TOKEN not in json.dumps(action)  # secret values are write-only
    id = action["id"]

    # 2. POST /api/v2/actions/actions/{id}/deploy -> 202 version object
    version = ok(api.post(f"/api/v2/actions/actions/{id}/deploy"), 202)
    assert version["id"]

    # 3. PATCH /api/v2/actions/triggers/send-phone-message/bindings
    bindings = ok(
        api.patch(
            "/api/v2/actions/triggers/send-phone-message/bindings",
            json={
                "bindings": [
                    {"ref": {"type": "action_id", "value": id}, "display_name": "custom-sms"}
                ]
            },
        ),
        200,
    )
    assert [b["action"]["id"] for b in bindings["bindings"]] == [id]

    # 4. PUT /api/v2/guardian/factors/phone/selected-provider
    chosen = {"provider": "phone-message-hook"}
    assert ok(api.put("/api/v2/guardian/factors/phone/selected-provider", json=chosen), 200) == (
        chosen
    )

    # 5. PUT /api/v2/guardian/factors/phone/message-types
    types = {"message_types": ["sms", "voice"]}
    assert ok(api.put("/api/v2/guardian/factors/phone/message-types", json=types), 200) == types

    # 6. POST /api/v2/actions/actions/{id}/test (Auth0's payload)
    tested = ok(
        api.post(
            f"/api/v2/actions/actions/{id}/test",
            json={
                "payload": {
                    "message_options": {
                        "action": "enrollment",
                        "code": "123456",
                        "message_type": "sms",
                        # Auth0's sample has +15555550123, which is no valid number: the
                        # event model refuses it (400 naming the property)
                        "recipient": "+14155550123",
                        "text": "123456 is your code",
                    },
                    "secrets": {},
                }
            },
        ),
        200,
    )
    assert tested["payload"]["error"] is None, tested
    assert tested["payload"]["outcome"] == "ok", tested
    (test_call,) = service.provider.requests
    assert json.loads(test_call.body) == {
        "to": "+14155550123",
        "text": "123456 is your code",
        "type": "sms",
    }
    assert test_call.headers["Authorization"] == f"Bearer {PROVIDER_TOKEN}"

    # then a delivery: the pipeline runs the deployed, bound action
    for channel, code in (("sms", "483920"), ("voice", "502817")):
        report = ok(
            api.post(
                "/api/v2/phone/messages",
                json={"to": "+14155552671", "code": code, "channel": channel},
            ),
            200,
        )
        assert (report["status"], report["delivered_by"]) == ("delivered", "phone-message-hook"), (
            report
        )
        sent = json.loads(service.provider.requests[-1].body)
        assert sent["to"] == "+14155552671"
        assert sent["type"] == channel
        spoken = ". ".join(code) if channel == "voice" else code
        assert code in sent["text"] or spoken in sent["text"], sent
    assert len(service.provider.requests) == 3
