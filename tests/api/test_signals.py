"""Signals through the real app: delivery receipts (Twilio's signature checked with the tenant's
auth token; a forged, unsigned or replayed callback changes nothing), Prometheus counts after a
burst, and usage triggers (a signed webhook once per period). Twilio's API and the webhook's
receiver are stubs on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator

from runtime.api.app import create_app
from runtime.api.tokens import SigningKeys
from runtime.receipts import vonage_signature_valid
from runtime.receipts.signatures import vonage_signature
from runtime.settings import Settings
from runtime.signing import SIGNATURE_HEADER, verify
from runtime.store.crypto import Keyring
from runtime.store.db import create_engine_for, migrate
from runtime.store.service import ServiceStore
from runtime.usage_triggers import UsageTriggerStore
from tests.api.conftest import api_settings, create_tenants, new_tenant
from tests.support.stub_server import RecordedRequest, StubServer
from tests.twilio.conftest import ACCOUNT_SID, AUTH_TOKEN, message_resource

PUBLIC = "https://phone.example.com"
METRICS_TOKEN = "m" * 24
PHONE = "+14155552671"
SCOPES = [
    "create:phone_messages",
    "create:phone_providers",
    "create:usage_triggers",
    "read:usage_triggers",
    "delete:usage_triggers",
]


def ok(response: Any, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _settings(tmp_path: Path) -> Settings:
    return api_settings(
        tmp_path / "data",
        public_base_url=PUBLIC,
        metrics_token=METRICS_TOKEN,
        outbound_allow_hosts=["127.0.0.1"],  # the webhook's receiver is a stub on 127.0.0.1
    )


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, str, Settings]]:
    settings = _settings(tmp_path)
    tenant = new_tenant()
    create_tenants(settings, tenant)
    token = SigningKeys.from_settings(settings).issue(tenant=tenant, scopes=SCOPES, ttl=3600)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client, tenant, settings


def _use_twilio(settings: Settings, client: TestClient, tenant: str, stub: StubServer) -> None:
    engine = create_engine_for(settings.resolved_database_url)
    store = ServiceStore(engine, Keyring.load(None, settings.data_dir))
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
            "delivery_methods": ["text"],
        },
    }
    ok(client.post("/api/v2/branding/phone/providers", json=provider), 201)


def _events(settings: Settings, kind: str) -> list[dict[str, Any]]:
    lines = settings.resolved_log_file.read_bytes().splitlines()
    return [event for event in map(orjson.loads, lines) if event["type"] == kind]


def test_a_signed_twilio_receipt_is_logged_once_and_a_forged_one_is_refused(
    app: tuple[TestClient, str, Settings], stub: StubServer
) -> None:
    client, tenant, settings = app
    stub.respond(201, message_resource())
    _use_twilio(settings, client, tenant, stub)
    sent = ok(client.post("/api/v2/phone/messages", json={"to": PHONE, "code": "246810"}), 200)
    assert sent["status"] == "delivered"
    # the outgoing message asked Twilio for this delivery's receipt, at the public URL
    url = f"{PUBLIC}/api/v2/receipts/twilio/{tenant}/{sent['id']}"
    assert stub.requests[-1].form["StatusCallback"] == [url]
    path = url.removeprefix(PUBLIC)
    fields = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered", "To": PHONE}
    good = RequestValidator(AUTH_TOKEN).compute_signature(url, fields)

    forged = RequestValidator("another-accounts-token").compute_signature(url, fields)
    for headers in ({}, {"X-Twilio-Signature": forged}):
        assert client.post(path, data=fields, headers=headers).status_code == 403
    tampered = {**fields, "MessageStatus": "undelivered"}
    refused = client.post(path, data=tampered, headers={"X-Twilio-Signature": good})
    assert refused.status_code == 403  # the signature covers every field
    assert _events(settings, "receipt_delivered") == []

    for _ in range(2):  # Twilio calls again when unsure it was heard: logged once
        assert client.post(path, data=fields, headers={"X-Twilio-Signature": good}).status_code == (
            204
        )
    (event,) = _events(settings, "receipt_delivered")
    assert event["tenant_name"] == tenant
    assert event["details"]["delivery_id"] == sent["id"]
    assert event["details"]["message_id"] == fields["MessageSid"]

    failed = {**fields, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, failed)
    assert client.post(
        path, data=failed, headers={"X-Twilio-Signature": signature}
    ).status_code == (204)
    assert _events(settings, "receipt_undelivered") == []  # the first final status stands

    second = ok(client.post("/api/v2/phone/messages", json={"to": PHONE, "code": "135790"}), 200)
    url_2 = f"{PUBLIC}/api/v2/receipts/twilio/{tenant}/{second['id']}"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url_2, failed)
    assert client.post(
        url_2.removeprefix(PUBLIC), data=failed, headers={"X-Twilio-Signature": signature}
    ).status_code == (204)
    (undelivered,) = _events(settings, "receipt_undelivered")
    assert undelivered["details"]["carrier_error"] == {"errorCode": "30003"}

    # another tenant's URL: the signature is checked with that tenant's credentials (none)
    other = new_tenant()
    create_tenants(settings, other)
    elsewhere = f"{PUBLIC}/api/v2/receipts/twilio/{other}/{sent['id']}"
    stolen = RequestValidator(AUTH_TOKEN).compute_signature(elsewhere, fields)
    answer = client.post(
        elsewhere.removeprefix(PUBLIC), data=fields, headers={"X-Twilio-Signature": stolen}
    )
    assert answer.status_code == 403


def test_vonage_signatures_every_algorithm_and_only_recent() -> None:
    # the vector of Vonage's Python SDK tests: the "MD5 hash" method with secret "secret"
    fields = {"a": "1", "b": "2", "timestamp": "1461605396"}
    assert vonage_signature(fields, "secret", "md5hash") == "6af838ef94998832dbfc29020b564830"
    signed = {**fields, "sig": "6af838ef94998832dbfc29020b564830"}
    assert vonage_signature_valid(signed, "secret", now=1461605396)
    assert not vonage_signature_valid({**signed, "b": "3"}, "secret", now=1461605396)
    assert not vonage_signature_valid(signed, "other", now=1461605396)
    assert not vonage_signature_valid(signed, "secret", now=1461605396 + 3600)  # a replay
    assert not vonage_signature_valid(fields, "secret", now=1461605396)  # unsigned
    for method in ("md5", "sha1", "sha256", "sha512"):
        sig = vonage_signature(fields, "secret", method).upper()  # Vonage writes upper case
        assert vonage_signature_valid({**fields, "sig": sig}, "secret", now=1461605396), method


def test_metrics_count_a_burst_without_phone_numbers(
    app: tuple[TestClient, str, Settings],
) -> None:
    client, tenant, _ = app
    for number in range(6):  # the outbox (the default sender) takes them: "stored"
        body = {"to": PHONE, "code": f"{100000 + number}"}
        assert ok(client.post("/api/v2/phone/messages", json=body), 200)["status"] == "stored"
    assert client.get("/metrics").status_code == 401  # a tenant's token does not read it
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200
    assert PHONE not in answer.text
    assert PHONE.lstrip("+") not in answer.text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }
    stored = ("tenant", tenant), ("provider", "outbox"), ("channel", "sms"), ("outcome", "stored")
    assert samples[("phone_actions_messages_total", tuple(sorted(stored)))] == 6
    latency = (("channel", "sms"), ("provider", "outbox"))
    assert samples[("phone_actions_attempt_seconds_count", latency)] >= 6  # the process's


def test_usage_trigger_calls_its_signed_webhook_once(
    app: tuple[TestClient, str, Settings], stub: StubServer
) -> None:
    client, tenant, _ = app
    called = threading.Event()
    received: list[RecordedRequest] = []

    def receiver(request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        received.append(request)
        called.set()
        return 204, b"", {}

    stub.respond_with(receiver)
    bad = {"period": "week", "threshold": 3, "url": f"{stub.url}/hook"}
    assert ok(client.post("/api/v2/usage-triggers", json=bad), 400)["message"] == (
        "period: must be one of hour, day, month"
    )
    body = {"period": "hour", "threshold": 3, "url": f"{stub.url}/hook"}
    trigger = ok(client.post("/api/v2/usage-triggers", json=body), 201)
    assert trigger["secret"].startswith("whsec_")
    assert "secret" not in ok(client.get(f"/api/v2/usage-triggers/{trigger['id']}"), 200)
    for number in range(3):
        client.post("/api/v2/phone/messages", json={"to": PHONE, "code": f"{200000 + number}"})
    assert called.wait(30), "the webhook was not called"  # generous: a loaded 2-core CI
    (hook,) = received
    assert verify(trigger["secret"], hook.body, hook.headers.get(SIGNATURE_HEADER))
    sent = orjson.loads(hook.body)
    assert (sent["trigger_id"], sent["tenant"], sent["threshold"]) == (trigger["id"], tenant, 3)
    assert sent["count"] >= 3


@pytest.fixture(params=["sqlite", "postgresql"])
def triggers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[UsageTriggerStore, str]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    else:
        url = str(request.getfixturevalue("postgres_database"))
    engine = create_engine_for(url)
    migrate(engine)
    keys = Keyring.load(None, tmp_path)
    tenant = new_tenant()
    ServiceStore(engine, keys).tenants.create(tenant)
    yield UsageTriggerStore(engine, keys), tenant
    engine.dispose()


def test_a_trigger_fires_once_per_period(triggers: tuple[UsageTriggerStore, str]) -> None:
    store, tenant = triggers
    hourly = store.create(tenant, {"period": "hour", "threshold": 3, "url": "https://x.test/h"})
    daily = store.create(tenant, {"period": "day", "threshold": 5, "url": "https://x.test/d"})
    at = datetime(2026, 3, 1, 10, 5, tzinfo=UTC)
    assert store.add_counts({tenant: 2}, at) == []
    (first,) = store.add_counts({tenant: 1}, at.replace(minute=20))  # 3: crosses the hour's
    assert (first.trigger_id, first.count) == (hourly["id"], 3)
    assert store.add_counts({tenant: 1}, at.replace(minute=40)) == []  # 4: fired already
    (day,) = store.add_counts({tenant: 1}, at.replace(minute=50))  # 5 today
    assert (day.trigger_id, day.count) == (daily["id"], 5)
    (next_hour,) = store.add_counts({tenant: 3}, at.replace(hour=11))  # a new hour
    assert next_hour.trigger_id == hourly["id"]
    assert next_hour.period_start == datetime(2026, 3, 1, 11, tzinfo=UTC)
    assert store.add_counts({"another-tenant": 50}, at) == []  # others' counts are theirs


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_failing_log_stream_sink_shows_in_metrics(tmp_path: Path, stub: StubServer) -> None:
    refused = threading.Event()

    def failing_sink(request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        refused.set()
        return 503, b"", {}

    stub.respond_with(failing_sink)
    settings = api_settings(
        tmp_path / "data",
        metrics_token=METRICS_TOKEN,
        log_stream_allow_http_hosts=["127.0.0.1"],
        log_stream_max_backoff=0.3,
        job_poll_interval=0.1,
    )
    tenant = new_tenant()
    create_tenants(settings, tenant)
    scopes = ["create:log_streams", "create:phone_messages"]
    token = SigningKeys.from_settings(settings).issue(tenant=tenant, scopes=scopes, ttl=600)
    metrics = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        sink = {"httpEndpoint": f"{stub.url}/logs", "httpContentFormat": "JSONLINES"}
        stream = ok(client.post("/api/v2/log-streams", json={"type": "http", "sink": sink}), 201)
        ok(client.post("/api/v2/phone/messages", json={"to": PHONE, "code": "975310"}), 200)
        assert refused.wait(60), "the stream never tried its sink"  # generous: loaded CI
        labels = (("stream", stream["id"]), ("tenant", tenant))
        failures = ("phone_actions_log_stream_failures_total", labels)
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for _ in range(1200):  # the count follows the sink's answer: look until it is there
            text = client.get("/metrics", headers=metrics).text
            samples = _samples(text)
            if samples.get(failures, 0) >= 1:
                break
            refused.wait(0.05)
    assert samples[failures] >= 1
    # the undelivered event is waiting: its age is the lag (a clock, not a tight bound)
    assert samples[("phone_actions_log_stream_lag_seconds", labels)] >= 0
    assert PHONE.lstrip("+") not in text  # the labels are the tenant and the stream's id
    keys = {key for series, labels_ in samples if "log_stream" in series for key, _ in labels_}
    assert keys == {"tenant", "stream"}
