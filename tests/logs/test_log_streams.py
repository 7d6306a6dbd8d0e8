"""Log streams end to end: a real sink on 127.0.0.1 that fails while 30 codes are sent, with
a restart of the service in between, receives every event once, in order, signed; a sink
failing past the window suspends the stream, and PATCH status active resumes it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from runtime.api.app import create_app
from runtime.api.tokens import SigningKeys
from runtime.settings import Settings
from runtime.signing import SIGNATURE_HEADER, verify
from tests.api.conftest import api_settings, create_tenants, database_url_for, new_tenant

STREAMS = "/api/v2/log-streams"
SEND = "/api/v2/phone/messages"
SCOPES = ("create:log_streams", "read:log_streams", "update:log_streams", "create:phone_messages")
GENEROUS = 60.0  # seconds: a loaded 2-core CI machine; the expected time is about a second


@dataclass
class Sink:
    """An HTTP sink that answers 503 while ``down`` and records what it accepted."""

    down: bool = True
    refused: int = 0
    batches: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    target: int = 0
    reached: threading.Event = field(default_factory=threading.Event)
    refused_once: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, count: int) -> None:
        with self.lock:
            self.target = count
            self.reached.clear()
            if len(self.events) >= count:
                self.reached.set()


@pytest.fixture
def sink() -> Iterator[tuple[Sink, str]]:
    state = Sink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                if state.down:
                    state.refused += 1
                    state.refused_once.set()
                    self.send_response(503)
                else:
                    state.batches.append((dict(self.headers), body))
                    if body.startswith(b"["):  # JSONARRAY
                        state.events.extend(orjson.loads(body))
                    else:  # JSONLINES
                        state.events.extend(orjson.loads(line) for line in body.splitlines())
                    if state.target and len(state.events) >= state.target:
                        state.reached.set()
                    self.send_response(200)
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


def _settings(tmp_path: Path, request: pytest.FixtureRequest, **extra: Any) -> Settings:
    data_dir = tmp_path / "data"
    url = database_url_for(request.param, data_dir, request)
    return api_settings(
        data_dir,
        database_url=url,
        log_stream_allow_http_hosts=["127.0.0.1"],
        log_stream_max_backoff=0.3,
        job_poll_interval=0.1,
        **extra,
    )


def _headers(settings: Settings, tenant: str) -> dict[str, str]:
    token = SigningKeys.from_settings(settings).issue(tenant=tenant, scopes=list(SCOPES), ttl=600)
    return {"Authorization": f"Bearer {token}"}


def _send(client: TestClient, headers: dict[str, str], count: int, start: int) -> None:
    for n in range(start, start + count):
        body = {"to": f"+1415555{n:04d}", "code": "135790", "channel": "sms"}
        response = client.post(SEND, json=body, headers=headers)
        assert response.status_code == 200, response.text


def _file_events(settings: Settings, tenant: str) -> list[str]:
    lines = settings.resolved_log_file.read_bytes().splitlines()
    return [e["log_id"] for e in map(orjson.loads, lines) if e["tenant_name"] == tenant]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> pytest.FixtureRequest:
    return request


def test_an_outage_and_a_restart_lose_and_repeat_nothing(
    tmp_path: Path, backend: pytest.FixtureRequest, sink: tuple[Sink, str]
) -> None:
    state, endpoint = sink
    settings = _settings(tmp_path, backend)
    tenant = new_tenant()
    create_tenants(settings, tenant)
    headers = _headers(settings, tenant)
    stream = {
        "name": "siem",
        "type": "http",
        "sink": {
            "httpEndpoint": endpoint,
            "httpContentFormat": "JSONLINES",
            "httpAuthorization": "Bearer sink-token",
            "httpCustomHeaders": [{"header": "X-Source", "value": "phone-actions"}],
        },
    }
    with TestClient(create_app(settings)) as client:
        created = client.post(STREAMS, json=stream, headers=headers)
        assert created.status_code == 201, created.text
        secret = created.json()["signing_secret"]
        assert "httpAuthorization" not in created.json()["sink"]
        _send(client, headers, 15, 0)
        assert state.refused_once.wait(GENEROUS), "the stream never tried the sink"
    # a restart while the sink is down: the queue, the cursor and the log are in the database
    with TestClient(create_app(settings)) as client:
        _send(client, headers, 15, 15)
        state.expect(30)
        with state.lock:
            state.down = False
        assert state.reached.wait(GENEROUS), f"{len(state.events)} events of 30 arrived"
        _send(client, headers, 1, 30)  # in order: a repeat would arrive before this one
        state.expect(31)
        assert state.reached.wait(GENEROUS)
        shown = client.get(f"{STREAMS}/{created.json()['id']}", headers=headers).json()

    received = [e["log_id"] for e in state.events]
    assert received == _file_events(settings, tenant)  # each once, in the log's order
    assert len(received) == 31
    assert all(e["data"]["type"] == "gd_send_sms" for e in state.events)
    assert all(e["data"]["log_id"] == e["log_id"] for e in state.events)
    assert state.refused >= 1
    for sent_headers, body in state.batches:
        assert verify(secret, body, sent_headers[SIGNATURE_HEADER])
        assert not verify(secret, body + b" ", sent_headers[SIGNATURE_HEADER])
        assert sent_headers["Authorization"] == "Bearer sink-token"
        assert sent_headers["X-Source"] == "phone-actions"
    assert shown["status"] == "active"
    # the cursor moves just after the sink's answer: the last batch may not be counted yet
    assert shown["delivery"]["delivered"] in (30, 31)


def test_a_failing_sink_suspends_the_stream_and_a_patch_resumes_it(
    tmp_path: Path, backend: pytest.FixtureRequest, sink: tuple[Sink, str]
) -> None:
    state, endpoint = sink
    settings = _settings(tmp_path, backend, log_stream_suspend_after=0.2)
    tenant = new_tenant()
    create_tenants(settings, tenant)
    headers = _headers(settings, tenant)
    body = {"type": "http", "sink": {"httpEndpoint": endpoint, "httpContentFormat": "JSONARRAY"}}
    with TestClient(create_app(settings)) as client:
        stream_id = client.post(STREAMS, json=body, headers=headers).json()["id"]
        _send(client, headers, 3, 100)
        url = f"{STREAMS}/{stream_id}"
        suspended = threading.Event()
        for _ in range(int(GENEROUS / 0.05)):  # the state is in the database: look until set
            if client.get(url, headers=headers).json()["status"] == "suspended":
                suspended.set()
                break
            suspended.wait(0.05)
        assert suspended.is_set()
        shown = client.get(url, headers=headers).json()
        assert "503" in shown["delivery"]["last_error"]
        with state.lock:
            state.down = False
        state.expect(3)
        resumed = client.patch(url, json={"status": "active"}, headers=headers)
        assert resumed.status_code == 200
        assert state.reached.wait(GENEROUS), (
            client.get(url, headers=headers).json()["delivery"],
            len(state.events),
            state.refused,
        )
    assert [e["log_id"] for e in state.events] == _file_events(settings, tenant)


def test_bad_streams_are_one_line_naming_the_field(
    tmp_path: Path, backend: pytest.FixtureRequest
) -> None:
    settings = _settings(tmp_path, backend)
    tenant = new_tenant()
    create_tenants(settings, tenant)
    headers = _headers(settings, tenant)
    cases = [
        ({"type": "datadog", "sink": {}}, "type"),
        ({"type": "http", "sink": {"httpEndpoint": "http://10.0.0.1/x"}}, "sink.httpEndpoint"),
        (
            {
                "type": "http",
                "sink": {"httpEndpoint": "https://a.example", "httpContentFormat": "X"},
            },
            "sink.httpContentFormat",
        ),
        (
            {
                "type": "http",
                "sink": {"httpEndpoint": "https://a.example"},
                "filters": [{"type": "category", "name": "nope"}],
            },
            "filters[0].name",
        ),
    ]
    with TestClient(create_app(settings)) as client:
        for body, where in cases:
            response = client.post(STREAMS, json=body, headers=headers)
            assert response.status_code == 400, response.text
            assert response.json()["message"].startswith(where + ":")
        assert client.get(STREAMS, headers=headers).json() == []
        good = {"type": "http", "sink": {"httpEndpoint": "https://a.example/in"}}
        made = client.post(STREAMS, json=good, headers=headers).json()
        from runtime import metrics

        metrics.observe_log_stream(tenant, made["id"], lag_seconds=3.0)  # as after a run
        assert f'stream="{made["id"]}"' in metrics.render().decode()
        for rotate in ("yes", "true", 1):  # a rotation that did not happen must not look done
            response = client.patch(
                f"{STREAMS}/{made['id']}", json={"rotate_signing_secret": rotate}, headers=headers
            )
            assert response.status_code == 400, response.text
            assert response.json()["message"].startswith("rotate_signing_secret:")
        token = SigningKeys.from_settings(settings).issue(
            tenant=tenant, scopes=["delete:log_streams"], ttl=600
        )
        deleted = client.delete(
            f"{STREAMS}/{made['id']}", headers={"Authorization": f"Bearer {token}"}
        )
        assert deleted.status_code == 204
        assert f'stream="{made["id"]}"' not in metrics.render().decode()  # its series went too
