"""Log streams take Auth0's documented options: ``httpContentFormat: JSONOBJECT`` (one POST
per event), ``startFrom`` (a date or a ``log_id`` of the stored log), ``isPriority`` (kept and
answered) and every filter category name of Auth0's SDKs; the categories hold the event codes
of Auth0's event-filters tables, so ``user.notification`` receives ``gd_start_enroll`` and
``other`` receives ``gd_send_sms``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from runtime.api.app import create_app
from runtime.api.tokens import SigningKeys
from runtime.logs.categories import CATEGORIES, category_of, types_of
from runtime.settings import Settings
from runtime.signing import SIGNATURE_HEADER, verify
from tests.api.conftest import create_tenants, new_tenant
from tests.logs.test_log_streams import GENEROUS, STREAMS, _file_events, _headers, _send, _settings

ENROLL = "/api/v2/phone/enrollments"
# Auth0's filter names: the Management API's LogStreamFilterGroupNameEnum (node-auth0,
# auth0-php...) and the .NET SDK's LogStreamFilterName (auth.ancillary.*)
AUTH0_FILTER_NAMES = (
    "actions",
    "auth.ancillary.fail",
    "auth.ancillary.success",
    "auth.login.fail",
    "auth.login.notification",
    "auth.login.success",
    "auth.logout.fail",
    "auth.logout.success",
    "auth.signup.fail",
    "auth.signup.success",
    "auth.silent_auth.fail",
    "auth.silent_auth.success",
    "auth.token_exchange.fail",
    "auth.token_exchange.success",
    "management.fail",
    "management.success",
    "other",
    "scim.event",
    "system.notification",
    "user.fail",
    "user.notification",
    "user.success",
)


@dataclass
class Received:
    """What a sink on 127.0.0.1 was sent: each request, and each event by stream."""

    fail: Callable[[int], bool] = lambda _n: False  # refuse the n-th request (from 1)?
    delay: float = 0.0  # a slow sink: seconds before each answer
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    count: int = 0

    def of(self, stream_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.events.get(stream_id, []))

    def wait(self, stream_id: str, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + GENEROUS
        while len(self.of(stream_id)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        events = self.of(stream_id)
        assert len(events) >= count, f"{stream_id}: {len(events)} events of {count}"
        return events


@pytest.fixture
def sink() -> Iterator[tuple[Received, str]]:
    state = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(state.delay)  # the sink is slow (a fault, not a synchronisation)
            with state.lock:
                state.count += 1
                refused = state.fail(state.count)
                if not refused:
                    state.requests.append((dict(self.headers), body))
                    items = orjson.loads(body) if body.startswith(b"[") else None
                    items = items or [orjson.loads(line) for line in body.splitlines()]
                    stream = self.headers["X-Phone-Actions-Log-Stream"]
                    state.events.setdefault(stream, []).extend(items)
            self.send_response(503 if refused else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/logs"
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> pytest.FixtureRequest:
    return request


def _service_tenant(
    tmp_path: Path, backend: pytest.FixtureRequest
) -> tuple[Settings, str, dict[str, str]]:
    """The service's settings, a tenant of this test's own, and headers with its token."""
    settings = _settings(tmp_path, backend)
    tenant = new_tenant()
    create_tenants(settings, tenant)
    return settings, tenant, _headers(settings, tenant)


def _catch_up(client: TestClient) -> None:
    pipeline = client.app.state.services.pipeline  # type: ignore[attr-defined]
    client.portal.call(pipeline.stored_log.ingester.catch_up)  # type: ignore[union-attr]


def _stream(client: TestClient, headers: dict[str, str], endpoint: str, **extra: Any) -> Any:
    sink = {"httpEndpoint": endpoint, **extra.pop("sink", {})}
    response = client.post(STREAMS, json={"type": "http", "sink": sink, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_jsonobject_posts_each_event_alone_and_never_repeats_one_taken(
    tmp_path: Path, backend: pytest.FixtureRequest, sink: tuple[Received, str]
) -> None:
    state, endpoint = sink
    state.fail = lambda n: n == 2  # the second event's first POST is refused
    settings, tenant, headers = _service_tenant(tmp_path, backend)
    with TestClient(create_app(settings)) as client:
        jsonobject = {"httpContentFormat": "JSONOBJECT"}
        made = _stream(client, headers, endpoint, sink=jsonobject, status="paused")
        assert made["sink"]["httpContentFormat"] == "JSONOBJECT"
        _send(client, headers, 3, 200)
        _catch_up(client)  # stored while it is paused: its first batch holds all three
        url = f"{STREAMS}/{made['id']}"
        assert client.patch(url, json={"status": "active"}, headers=headers).status_code == 200
        events = state.wait(made["id"], 3)
    assert [e["log_id"] for e in events] == _file_events(settings, tenant)  # each once
    assert len(state.requests) == 3
    for sent_headers, body in state.requests:
        assert body.startswith(b"{")
        assert b"\n" not in body
        assert verify(made["signing_secret"], body, sent_headers[SIGNATURE_HEADER])


def test_a_slow_sink_never_holds_a_jsonobject_batch_past_one_request_budget(
    tmp_path: Path,
    backend: pytest.FixtureRequest,
    sink: tuple[Received, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One request per event must not make a batch last a request's budget per event (100
    events of a sink that takes 10 s each would hold the job 1,000 s, past its lease, and
    another node would send them again): no request starts after one budget; the rest go in
    the next runs, each event once."""
    from runtime.logs import stream_delivery

    state, endpoint = sink
    state.delay = 0.1
    monkeypatch.setattr(stream_delivery, "_REQUEST_TIMEOUT", 0.15)
    batches: list[int] = []  # the events each run was given, counted as it starts
    real_send = stream_delivery.LogStreamDelivery._send

    async def counted(self: Any, stream: Any, rows: list[Any]) -> Any:
        batches.append(len(rows))
        return await real_send(self, stream, rows)

    monkeypatch.setattr(stream_delivery.LogStreamDelivery, "_send", counted)
    settings, tenant, headers = _service_tenant(tmp_path, backend)
    with TestClient(create_app(settings)) as client:
        jsonobject = {"httpContentFormat": "JSONOBJECT"}
        made = _stream(client, headers, endpoint, sink=jsonobject, status="paused")
        _send(client, headers, 5, 200)
        _catch_up(client)  # stored while it is paused: its first batch holds all five
        url = f"{STREAMS}/{made['id']}"
        assert client.patch(url, json={"status": "active"}, headers=headers).status_code == 200
        events = state.wait(made["id"], 5)
    assert [e["log_id"] for e in events] == _file_events(settings, tenant)  # each once
    # two requests a run at most (the second starts before the budget ends): the rest of the
    # batch went in later runs (the last one had started when the fifth event arrived)
    assert batches[0] == 5
    assert len(batches) >= 3


def test_start_from_a_log_id_or_a_date_of_the_stored_log(
    tmp_path: Path, backend: pytest.FixtureRequest, sink: tuple[Received, str]
) -> None:
    state, endpoint = sink
    settings, tenant, headers = _service_tenant(tmp_path, backend)
    with TestClient(create_app(settings)) as client:
        _send(client, headers, 3, 300)
        _catch_up(client)
        before = _file_events(settings, tenant)
        now = _stream(client, headers, endpoint)
        after_first = _stream(client, headers, endpoint, startFrom=before[0])
        past = _stream(client, headers, endpoint, startFrom="2000-01-01")
        soon = datetime.now(UTC) + timedelta(minutes=1)
        late = _stream(client, headers, endpoint, startFrom=soon.isoformat())
        for start_from in ("9" * 32, (datetime.now(UTC) + timedelta(hours=1)).isoformat(), 5):
            refused = client.post(
                STREAMS,
                json={"type": "http", "sink": {"httpEndpoint": endpoint}, "startFrom": start_from},
                headers=headers,
            )
            assert refused.status_code == 400, refused.text
            assert refused.json()["message"].startswith("startFrom: ")
        _send(client, headers, 1, 303)
        everything = _file_events(settings, tenant)
        assert [e["log_id"] for e in state.wait(past["id"], 4)] == everything
        assert [e["log_id"] for e in state.wait(after_first["id"], 3)] == everything[1:]
        assert [e["log_id"] for e in state.wait(now["id"], 1)] == everything[3:]
        assert [e["log_id"] for e in state.wait(late["id"], 1)] == everything[3:]
        assert "startFrom" not in client.get(f"{STREAMS}/{past['id']}", headers=headers).json()


def test_is_priority_is_kept_and_answered(
    tmp_path: Path, backend: pytest.FixtureRequest, sink: tuple[Received, str]
) -> None:
    _, endpoint = sink
    settings, _tenant, headers = _service_tenant(tmp_path, backend)
    with TestClient(create_app(settings)) as client:
        plain = _stream(client, headers, endpoint)
        assert plain["isPriority"] is False
        made = _stream(client, headers, endpoint, isPriority=True)
        url = f"{STREAMS}/{made['id']}"
        assert made["isPriority"] is True
        assert set(made["sink"]) == {
            "httpEndpoint",
            "httpContentType",
            "httpContentFormat",
            "httpCustomHeaders",
        }
        assert client.get(url, headers=headers).json()["isPriority"] is True
        changed = client.patch(url, json={"sink": {"httpContentType": "x/y"}}, headers=headers)
        assert changed.json()["isPriority"] is True
        assert changed.json()["sink"]["httpContentType"] == "x/y"
        off = client.patch(url, json={"isPriority": False}, headers=headers)
        assert off.status_code == 200, off.text
        assert off.json()["isPriority"] is False
        assert off.json()["sink"] == changed.json()["sink"]
        listed = client.get(STREAMS, headers=headers).json()
        assert [s["isPriority"] for s in listed] == [False, False]
        for body, where in (
            ({"isPriority": "yes"}, "isPriority"),
            ({"isPriority": 1}, "isPriority"),
            ({"sink": {"_isPriority": True}}, "sink._isPriority"),  # not a sink field
        ):
            refused = client.patch(url, json=body, headers=headers)
            assert refused.status_code == 400, refused.text
            assert refused.json()["message"].startswith(f"{where}: ")


def test_every_auth0_filter_name_is_accepted_and_filters_by_auth0s_tables(
    tmp_path: Path, backend: pytest.FixtureRequest, sink: tuple[Received, str]
) -> None:
    state, endpoint = sink
    settings, tenant, headers = _service_tenant(tmp_path, backend)
    enroll = {"user_id": "auth0|streams-1", "phone_number": "+14155550401", "channel": "sms"}
    with TestClient(create_app(settings)) as client:
        every = [{"type": "category", "name": name} for name in AUTH0_FILTER_NAMES]
        _stream(client, headers, endpoint, filters=every)
        notification = _stream(
            client, headers, endpoint, filters=[{"type": "category", "name": "user.notification"}]
        )
        other = _stream(client, headers, endpoint, filters=[{"type": "category", "name": "other"}])
        nothing = _stream(
            client, headers, endpoint, filters=[{"type": "category", "name": "management.fail"}]
        )
        keys = SigningKeys.from_settings(settings)
        token = keys.issue(tenant=tenant, scopes=["create:phone_enrollments"], ttl=600)
        started = client.post(ENROLL, json=enroll, headers={"Authorization": f"Bearer {token}"})
        assert started.status_code == 201, started.text
        assert [e["data"]["type"] for e in state.wait(notification["id"], 1)] == ["gd_start_enroll"]
        assert [e["data"]["type"] for e in state.wait(other["id"], 1)] == ["gd_send_sms"]
        shown = client.get(f"{STREAMS}/{nothing['id']}", headers=headers).json()
        assert shown["delivery"]["delivered"] == 0
    assert state.of(nothing["id"]) == []


def test_categories_follow_auth0s_event_filter_tables() -> None:
    assert set(CATEGORIES) == set(AUTH0_FILTER_NAMES)
    expected = {
        "gd_enrollment_complete": "user.notification",
        "gd_start_enroll": "user.notification",
        "fn": "user.fail",
        "actions_execution_failed": "actions",
        "fcpn": "user.fail",
        "scpn": "user.success",
        "sapi": "management.success",
        "api_limit": "system.notification",
        "sscim": "scim.event",
    }
    # this service's codes that no table of Auth0 lists
    for kind in (
        "gd_send_sms",
        "gd_send_sms_failure",
        "gd_send_voice",
        "gd_send_voice_failure",
        "gd_start_auth",
        "gd_auth_succeed",
        "gd_auth_failed",
        "gd_otp_rate_limit_exceed",
        "limit_phone",
        "wn",
    ):
        expected[kind] = "other"
    assert {kind: category_of(kind) for kind in expected} == expected
    assert types_of(["management.fail", "auth.ancillary.fail"]) == frozenset()
    assert types_of(["user.notification", "other"]) is None
    listed = [kind for name in CATEGORIES for kind in (types_of([name]) or ())]
    assert len(listed) == len(set(listed)), "a code in two categories"
