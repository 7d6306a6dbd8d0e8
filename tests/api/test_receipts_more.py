"""Delivery receipts of Plivo, Infobip, Sinch and Telesign through the real app: the outgoing
message asks for the receipt (only because public_base_url is set), a good callback is logged
once, and an unsigned, forged or wrong-token one is 403 and changes nothing. The providers'
APIs are stubs on 127.0.0.1; callbacks are signed here as each provider signs them (Plivo's
own SDK computes its V3 signature)."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from plivo.utils.signature_v3 import construct_post_url, get_signature_v3

from runtime.api.app import create_app
from runtime.api.tokens import SigningKeys
from runtime.receipts.signatures import telesign_signature
from runtime.settings import Settings
from runtime.store.crypto import Keyring
from runtime.store.db import create_engine_for
from runtime.store.service import ServiceStore
from tests.api.conftest import api_settings, create_tenants, new_tenant
from tests.support.stub_server import StubServer

PUBLIC = "https://phone.example.com"
PHONE = "+14155552671"
SCOPES = ["create:phone_messages"]
PLIVO_TOKEN = "plivo-auth-token-0123456789"
TELESIGN_KEY = base64.b64encode(b"telesign api key bytes").decode()


def ok(response: Any, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, str, Settings]]:
    settings = api_settings(tmp_path / "data", public_base_url=PUBLIC)
    tenant = new_tenant()
    create_tenants(settings, tenant)
    token = SigningKeys.from_settings(settings).issue(tenant=tenant, scopes=SCOPES, ttl=3600)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client, tenant, settings


def _use(
    settings: Settings,
    tenant: str,
    name: str,
    configuration: dict[str, Any],
    secret: dict[str, str],
) -> None:
    """Make ``name`` the tenant's provider (its API origin in ``configuration``: the stub)."""
    engine = create_engine_for(settings.resolved_database_url)
    store = ServiceStore(engine, Keyring.load(None, settings.data_dir))
    store.tenants.update(tenant, settings={"provider": name, "provider_settings": configuration})
    store.tenants.set_credentials(tenant, secret)
    engine.dispose()


def _send(client: TestClient) -> dict[str, Any]:
    sent = ok(client.post("/api/v2/phone/messages", json={"to": PHONE, "code": "246810"}), 200)
    assert sent["status"] == "delivered", sent
    return dict(sent)


def _events(settings: Settings, kind: str) -> list[dict[str, Any]]:
    lines = settings.resolved_log_file.read_bytes().splitlines()
    return [event for event in map(orjson.loads, lines) if event["type"] == kind]


def _plivo_headers(url: str, fields: dict[str, str], token: str, nonce: str) -> dict[str, str]:
    signed = get_signature_v3(token.encode(), construct_post_url(url, dict(fields)), nonce)
    return {"X-Plivo-Signature-V3": signed.decode(), "X-Plivo-Signature-V3-Nonce": nonce}


def test_plivo_receipts_need_plivos_v3_signature(
    app: tuple[TestClient, str, Settings], stub: StubServer
) -> None:
    client, tenant, settings = app
    stub.respond(202, {"api_id": "a", "message_uuid": ["9f1c2a7e-0000-4000-8000-000000000001"]})
    configuration = {"from_number": "+14155550100", "base_url": stub.url}
    credentials = {"auth_id": "MA0123456789", "auth_token": PLIVO_TOKEN}
    _use(settings, tenant, "plivo", configuration, credentials)
    sent = _send(client)
    url = f"{PUBLIC}/api/v2/receipts/plivo/{tenant}/{sent['id']}"
    assert orjson.loads(stub.requests[-1].body)["url"] == url  # the message asked for it
    path = url.removeprefix(PUBLIC)
    fields = {"MessageUUID": "9f1c2a7e", "Status": "delivered", "To": PHONE.lstrip("+")}
    good = _plivo_headers(url, fields, PLIVO_TOKEN, "12345678901234567890")

    forged = _plivo_headers(url, fields, "another-accounts-token", "12345678901234567890")
    tampered = {**fields, "Status": "undelivered"}
    for body, headers in ((fields, {}), (fields, forged), (tampered, good)):
        assert client.post(path, data=body, headers=headers).status_code == 403
    assert _events(settings, "receipt_undelivered") == []

    for _ in range(2):  # Plivo calls again when unsure it was heard: logged once
        assert client.post(path, data=fields, headers=good).status_code == 204
    (event,) = _events(settings, "receipt_delivered")
    assert event["details"]["delivery_id"] == sent["id"]
    assert event["details"]["provider"] == "plivo"
    assert event["details"]["message_id"] == "9f1c2a7e"


def _token_url(request_body: Any, *keys: str) -> str:
    value = request_body
    for key in keys:
        value = value[int(key)] if isinstance(value, list) else value[key]
    return str(value)


def _wrong_tokens(path: str) -> list[str]:
    """The same URL with no token, a changed token, and another delivery's id."""
    base, _, token = path.rpartition("/")
    flipped = token[:-1] + ("0" if token[-1] != "0" else "1")
    other = base.rpartition("/")[0] + "/another-delivery"
    return [base, f"{base}/{flipped}", f"{other}/{token}"]


def test_infobip_receipts_need_the_delivery_token(
    app: tuple[TestClient, str, Settings], stub: StubServer
) -> None:
    client, tenant, settings = app
    pending = {"groupId": 1, "groupName": "PENDING", "name": "PENDING_ACCEPTED"}
    stub.respond(200, {"messages": [{"messageId": "ib-1", "status": pending}]})
    configuration = {"base_url": stub.url, "sender": "Acme"}
    _use(settings, tenant, "infobip", configuration, {"api_key": "k" * 16})
    sent = _send(client)
    request = orjson.loads(stub.requests[-1].body)
    url = _token_url(request, "messages", "0", "webhooks", "delivery", "url")
    prefix = f"{PUBLIC}/api/v2/receipts/infobip/{tenant}/{sent['id']}/"
    assert url.startswith(prefix)
    assert len(url) > len(prefix) + 20  # a token follows the delivery id
    path = url.removeprefix(PUBLIC)
    failed = {"groupId": 2, "groupName": "UNDELIVERABLE", "name": "UNDELIVERABLE_REJECTED_OPERATOR"}
    report = {
        "results": [
            {
                "messageId": "ib-1",
                "to": "14155552671",
                "status": failed,
                "error": {"id": 8, "name": "EC_ABSENT"},
            }
        ]
    }
    for wrong in _wrong_tokens(path):
        assert client.post(wrong, json=report).status_code in (403, 404), wrong
    assert _events(settings, "receipt_undelivered") == []
    for _ in range(2):
        assert client.post(path, json=report).status_code == 204
    (event,) = _events(settings, "receipt_undelivered")
    assert event["details"]["delivery_id"] == sent["id"]
    assert event["details"]["carrier_error"] == {"errorCode": "EC_ABSENT"}
    assert client.post(path, content=b"not json").status_code == 400  # one line, no traceback


def test_a_receipt_recorded_after_its_deadline_is_logged_once(
    app: tuple[TestClient, str, Settings], stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database recorded the status only after the route had answered 503 (a lock held
    until just before its timeout): the event is written all the same, and the provider's
    retry, which finds the status recorded, adds none."""
    from runtime.receipts.store import ReceiptStore

    client, tenant, settings = app
    pending = {"groupId": 1, "groupName": "PENDING", "name": "PENDING_ACCEPTED"}
    stub.respond(200, {"messages": [{"messageId": "ib-2", "status": pending}]})
    _use(
        settings, tenant, "infobip", {"base_url": stub.url, "sender": "Acme"}, {"api_key": "k" * 16}
    )
    sent = _send(client)
    request = orjson.loads(stub.requests[-1].body)
    path = _token_url(request, "messages", "0", "webhooks", "delivery", "url").removeprefix(PUBLIC)
    done = {"groupId": 3, "groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET"}
    report = {"results": [{"messageId": "ib-2", "to": "14155552671", "status": done}]}
    real_record, release = ReceiptStore.record, threading.Event()

    def recording_late(self: ReceiptStore, receipt: Any) -> bool:
        release.wait(30)
        return real_record(self, receipt)

    monkeypatch.setattr(ReceiptStore, "record", recording_late)
    assert client.post(path, json=report).status_code == 503
    release.set()  # it commits now, with nobody waiting for it
    deadline = time.monotonic() + 30
    while not _events(settings, "receipt_delivered") and time.monotonic() < deadline:
        threading.Event().wait(0.02)  # the late receipt's event is written on the app's loop
    monkeypatch.undo()
    assert client.post(path, json=report).status_code == 204  # the provider calls again
    (event,) = _events(settings, "receipt_delivered")
    assert event["details"]["delivery_id"] == sent["id"]


def test_the_first_final_status_of_a_delivery_stands(
    app: tuple[TestClient, str, Settings], stub: StubServer
) -> None:
    """Delivered, then undeliverable (or the other way round): one final status is recorded
    and logged, the first; an id no delivery can have is a 404, so the provider stops."""
    from runtime.receipts.store import ReceiptStore
    from runtime.store.db import create_engine_for as engine_for

    client, tenant, settings = app
    pending = {"groupId": 1, "groupName": "PENDING", "name": "PENDING_ACCEPTED"}
    stub.respond(200, {"messages": [{"messageId": "ib-3", "status": pending}]})
    _use(
        settings, tenant, "infobip", {"base_url": stub.url, "sender": "Acme"}, {"api_key": "k" * 16}
    )
    _send(client)
    request = orjson.loads(stub.requests[-1].body)
    path = _token_url(request, "messages", "0", "webhooks", "delivery", "url").removeprefix(PUBLIC)
    delivered = {"groupId": 3, "groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET"}
    failed = {"groupId": 2, "groupName": "UNDELIVERABLE", "name": "UNDELIVERABLE_REJECTED"}
    for status in (delivered, failed, delivered):
        report = {"results": [{"messageId": "ib-3", "to": "14155552671", "status": status}]}
        assert client.post(path, json=report).status_code == 204
    assert len(_events(settings, "receipt_delivered")) == 1
    assert _events(settings, "receipt_undelivered") == []

    base, _, token = path.rpartition("/")
    too_long = base.rpartition("/")[0] + "/" + "d" * 200 + "/" + token
    answer = client.post(too_long, json={"results": []})
    assert answer.status_code == 404, answer.text  # before the token: never "try again later"

    engine = engine_for(settings.resolved_database_url)
    try:
        assert ReceiptStore(engine).purge(older_than_days=0) >= 1  # the log's retention
        assert ReceiptStore(engine).purge(older_than_days=0) == 0
    finally:
        engine.dispose()


def test_sinch_receipts_need_the_delivery_token(
    app: tuple[TestClient, str, Settings], stub: StubServer
) -> None:
    client, tenant, settings = app
    stub.respond(201, {"id": "01FC66621XXXXX119Z8PMV1QPQ", "to": [PHONE.lstrip("+")]})
    configuration = {"service_plan_id": "plan1", "sender": "+14155550100", "sms_base_url": stub.url}
    credentials = {"api_token": "t" * 32}
    _use(settings, tenant, "sinch", configuration, credentials)
    sent = _send(client)
    request = orjson.loads(stub.requests[-1].body)
    assert request["delivery_report"] == "per_recipient"
    path = str(request["callback_url"]).removeprefix(PUBLIC)
    assert path.startswith(f"/api/v2/receipts/sinch/{tenant}/{sent['id']}/")
    report = {
        "type": "recipient_delivery_report_sms",
        "batch_id": "01FC66621XXXXX119Z8PMV1QPQ",
        "recipient": PHONE.lstrip("+"),
        "code": 0,
        "status": "Delivered",
    }
    for wrong in _wrong_tokens(path):
        assert client.post(wrong, json=report).status_code in (403, 404), wrong
    assert _events(settings, "receipt_delivered") == []
    queued = {**report, "status": "Queued", "code": 400}
    assert client.post(path, json=queued).status_code == 204  # intermediate: ignored
    assert _events(settings, "receipt_delivered") == []
    assert client.post(path, json=report).status_code == 204
    (event,) = _events(settings, "receipt_delivered")
    assert event["details"]["delivery_id"] == sent["id"]
    assert event["details"]["provider"] == "sinch"


def test_telesign_receipts_need_the_token_and_telesigns_signature(
    app: tuple[TestClient, str, Settings], stub: StubServer
) -> None:
    client, tenant, settings = app
    stub.respond(200, {"reference_id": "B56A4DBD", "status": {"code": 290, "description": "x"}})
    credentials = {"customer_id": "CUST-1", "api_key": TELESIGN_KEY}
    _use(settings, tenant, "telesign", {"base_url": stub.url}, credentials)
    sent = _send(client)
    callback = stub.requests[-1].form["callback_url"][0]
    path = callback.removeprefix(PUBLIC)
    assert path.startswith(f"/api/v2/receipts/telesign/{tenant}/{sent['id']}/")
    body = orjson.dumps(
        {"reference_id": "B56A4DBD", "status": {"code": 200, "description": "Delivered to handset"}}
    )
    good = {"Authorization": f"TSA CUST-1:{telesign_signature(TELESIGN_KEY, body)}"}
    other_key = base64.b64encode(b"someone else's key").decode()
    forged = {"Authorization": f"TSA CUST-1:{telesign_signature(other_key, body)}"}
    json_type = {"Content-Type": "application/json"}
    for headers in ({}, forged):
        answer = client.post(path, content=body, headers={**json_type, **headers})
        assert answer.status_code == 403
    for wrong in _wrong_tokens(path):  # a good signature on a wrong URL
        answer = client.post(wrong, content=body, headers={**json_type, **good})
        assert answer.status_code in (403, 404), wrong
    assert _events(settings, "receipt_delivered") == []
    for _ in range(2):
        assert client.post(path, content=body, headers={**json_type, **good}).status_code == 204
    (event,) = _events(settings, "receipt_delivered")
    assert event["details"]["delivery_id"] == sent["id"]
    assert event["details"]["message_id"] == "B56A4DBD"


def test_every_receipt_route_checks_the_ids_first(app: tuple[TestClient, str, Settings]) -> None:
    """GET and POST alike (Vonage has both): an id no delivery can have is a 404 before any
    signature, token or database (a 503 makes a provider call again forever)."""
    from fastapi.routing import APIRoute

    from runtime.api.routers import receipts

    client, _tenant, _settings = app
    routes = [
        r
        for r in client.app.routes  # type: ignore[attr-defined]
        if isinstance(r, APIRoute) and r.path.startswith("/api/v2/receipts/")
    ]
    assert len(routes) >= 7
    for route in routes:
        calls = [d.call for d in route.dependant.dependencies]
        assert receipts._ids_fit in calls, (route.methods, route.path)
