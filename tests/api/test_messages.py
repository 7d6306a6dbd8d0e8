"""POST /api/v2/phone/messages runs the real pipeline: the code lands in the outbox, once per
idempotency key, in the token's tenant only."""

from __future__ import annotations

import uuid

from plugins.outbox import OutboxProvider
from tests.api.conftest import Api

SEND = "/api/v2/phone/messages"


def outbox(api: Api, tenant: str) -> list[str]:
    store = OutboxProvider(api.settings.resolved_database_url, timeout=5)
    return [m.text for m in store.messages(tenant)]


def test_a_code_goes_through_the_pipeline_into_the_outbox(api: Api) -> None:
    headers = api.auth(api.tenant_a, "create:phone_messages")
    before = len(outbox(api, api.tenant_a))
    response = api.client.post(
        SEND,
        json={"to": "+14155552671", "code": "246810", "channel": "sms", "locale": "en"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["status"] == "stored"
    assert report["delivered_by"] == "outbox"
    assert report["tenant"] == api.tenant_a
    assert report["recipient"] == "+14155552671"
    texts = outbox(api, api.tenant_a)
    assert len(texts) == before + 1
    assert "246810" in texts[-1]
    assert all("246810" not in t for t in outbox(api, api.tenant_b))


def test_the_same_idempotency_key_sends_once(api: Api) -> None:
    headers = api.auth(api.tenant_b, "create:phone_messages")
    key = f"k-{uuid.uuid4().hex}"
    body = {"to": "+14155552671", "code": "135790", "idempotency_key": key}
    before = len(outbox(api, api.tenant_b))
    first = api.client.post(SEND, json=body, headers=headers).json()
    second = api.client.post(SEND, json=body, headers=headers).json()
    assert first["status"] == second["status"] == "stored"
    assert second["replayed"] is True
    assert second["id"] == first["id"]
    assert len(outbox(api, api.tenant_b)) == before + 1


def test_voice_and_enrollment_are_passed_on(api: Api) -> None:
    headers = api.auth(api.tenant_a, "create:phone_messages")
    body = {"to": "+14155552671", "code": "864200", "channel": "voice", "purpose": "enrollment"}
    report = api.client.post(SEND, json=body, headers=headers).json()
    assert (report["channel"], report["purpose"]) == ("voice", "enrollment")
