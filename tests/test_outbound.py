"""No server-side request forgery through the service's own calls to URLs tenants chose.

A log-stream sink or a usage-trigger webhook whose host is an IP literal that is not public
is refused when it is saved (a 400 naming the field); at send time the name is resolved once
and the connection pinned to a public address, so a name that resolves (or is re-pointed) to
127.0.0.1, 10/8, 169.254.169.254 or ::1 is never contacted; redirects are not followed; a
tenant cannot set a provider's ``base_url`` through the API.

Nothing here contacts anything but 127.0.0.1: names are answered by an injected resolver or
by a DNS server of the test's own on 127.0.0.1, and every transport either answers without a
socket or is the real one for 127.0.0.1 only, failing the test on any other address.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from runtime.api.app import create_app
from runtime.api.tokens import SigningKeys
from runtime.errors import ConfigurationError, InvalidInputError
from runtime.logs.stored import LogRow
from runtime.logs.stream_delivery import LogStreamDelivery
from runtime.logs.streams import StreamState
from runtime.outbound import AresResolver, OutboundHttp, OutboundRefused, OutboundRules
from runtime.settings import Settings, load_settings
from runtime.store.crypto import Keyring
from runtime.store.db import create_engine_for, migrate
from runtime.store.executor import StoreExecutor
from runtime.store.jobrunner import Again, Done, JobRunner
from runtime.store.jobs import Job
from runtime.store.service import ServiceStore
from runtime.usage_triggers import TriggerWebhooks, UsageTriggerStore
from tests.api.conftest import api_settings, create_tenants, new_tenant
from tests.support.dns_server import DnsServer
from tests.support.stub_server import StubServer

PUBLIC_IP = "93.184.216.34"  # never contacted: the transports below answer without a socket

# Hosts a tenant might use to reach the service's own network, as IP literals.
NOT_PUBLIC = [
    "https://127.0.0.1/hook",
    "https://127.0.0.1:8443/hook",
    "https://10.0.0.1/hook",
    "https://172.16.5.4/hook",
    "https://192.168.1.1/hook",
    "https://100.64.0.1/hook",  # carrier-grade NAT
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://0.0.0.0/hook",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "https://[::ffff:a9fe:a9fe]/hook",  # IPv4-mapped metadata
    "https://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "https://[fd00::1]/hook",
    "https://[fe80::1]/hook",
    "https://2130706433/hook",  # 127.0.0.1 as one number
    "https://0x7f.1/hook",
    "https://0177.0.0.1/hook",
    "https://127.1/hook",
]
# Refused whatever the address: the scheme, credentials or spelling.
MALFORMED = [
    "http://hooks.example.com/x",
    "ftp://hooks.example.com/x",
    "https://user:pw@hooks.example.com/x",
    "https://hooks.example.com\\@127.0.0.1/x",
    "https:///x",
    "not a url",
    "https://[fe80::1%25eth0]/x",
]


class Guard(httpx.AsyncBaseTransport):
    """Records each request; answers 204 for PUBLIC_IP without a socket, forwards 127.0.0.1
    to the real transport, and fails the test for any other address."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._real = httpx.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == PUBLIC_IP:
            return httpx.Response(204)
        if request.url.host != "127.0.0.1":
            pytest.fail(f"a connection was attempted to {request.url.host}")
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


class Answers:
    """An injected resolver: the answers a name gets, in turn (the last one repeats)."""

    def __init__(self, **names: list[list[str]]) -> None:
        self._names = {name.replace("_", "."): list(turns) for name, turns in names.items()}
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        turns = self._names.get(host)
        if not turns:
            raise OSError(f"{host}: no such name")
        return turns.pop(0) if len(turns) > 1 else turns[0]


@pytest.fixture
async def guard() -> AsyncIterator[Guard]:
    transport = Guard()
    yield transport
    await transport.aclose()


def outbound(guard: Guard, resolver: Any, allow: tuple[str, ...] = ()) -> OutboundHttp:
    return OutboundHttp(OutboundRules(allow), resolver=resolver, transport_factory=lambda: guard)


async def post(sender: OutboundHttp, url: str, **headers: str) -> int:
    return (await sender.post("tenant-a", url, b'{"n":1}', headers, budget=30)).status


# -- save time ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", NOT_PUBLIC + MALFORMED)
def test_a_url_that_could_reach_the_service_network_is_refused_when_saved(url: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        OutboundRules().check(url, "sink.httpEndpoint")
    assert refused.value.field == "sink.httpEndpoint"
    assert "\n" not in str(refused.value)


def test_public_hosts_any_port_and_allow_listed_fakes_are_accepted_when_saved() -> None:
    rules = OutboundRules(["127.0.0.1", "sink.test:8080"])
    for url in (
        "https://hooks.example.com/x",
        "https://splunk.example.com:8088/services/collector",  # any port of a public host
        f"https://{PUBLIC_IP}/x",
        "http://127.0.0.1:5123/logs",  # allow-listed without a port: any port
        "http://sink.test:8080/x",
    ):
        assert rules.check(url, "url") == url
    with pytest.raises(InvalidInputError, match="outbound_allow_hosts"):
        rules.check("http://sink.test:8081/x", "url")  # another port of a host:port entry


def test_a_bad_allow_list_entry_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("PHONE_ACTIONS_OUTBOUND_ALLOW_HOSTS", '["http://127.0.0.1:8080"]')
    with pytest.raises(ConfigurationError) as bad:
        load_settings()
    message = str(bad.value)
    assert message.startswith("invalid settings: PHONE_ACTIONS_OUTBOUND_ALLOW_HOSTS: ")
    assert "a URL or a path, not a host" in message
    assert "\n" not in message
    monkeypatch.setenv("PHONE_ACTIONS_OUTBOUND_ALLOW_HOSTS", '["127.0.0.1:8080"]')
    monkeypatch.setenv("PHONE_ACTIONS_LOG_STREAM_ALLOW_HTTP_HOSTS", '["sink.test"]')
    assert load_settings().outbound_hosts() == ["127.0.0.1:8080", "sink.test"]


# -- send time ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [["127.0.0.1"], ["10.1.2.3"], ["169.254.169.254"], ["::1"], ["::ffff:10.0.0.1"], ["fd00::5"]],
)
async def test_a_name_resolving_to_a_private_address_is_never_contacted(
    guard: Guard, answer: list[str]
) -> None:
    dns = Answers(hooks_example_com=[answer])
    sender = outbound(guard, dns)
    with pytest.raises(OutboundRefused, match="does not resolve to a public address"):
        await post(sender, "https://hooks.example.com/x")
    assert guard.requests == []
    await sender.aclose()


async def test_one_private_address_among_public_ones_refuses_the_name(guard: Guard) -> None:
    sender = outbound(guard, Answers(hooks_example_com=[[PUBLIC_IP, "10.0.0.7"]]))
    with pytest.raises(OutboundRefused):
        await post(sender, "https://hooks.example.com/x")
    assert guard.requests == []
    await sender.aclose()


async def test_the_connection_is_pinned_to_the_address_that_was_checked(guard: Guard) -> None:
    """Resolved once per call; the request goes to that IP with Host and SNI on the name, so
    a name re-pointed at 127.0.0.1 after the check (DNS rebinding) is refused, not reached."""
    dns = Answers(hooks_example_com=[[PUBLIC_IP], ["127.0.0.1"]])
    sender = outbound(guard, dns)
    assert await post(sender, "https://hooks.example.com/x?a=1", Authorization="Bearer t") == 204
    (sent,) = guard.requests
    assert sent.url.host == PUBLIC_IP
    assert sent.url.raw_path == b"/x?a=1"
    assert sent.headers["host"] == "hooks.example.com"
    assert sent.headers["authorization"] == "Bearer t"
    assert sent.extensions["sni_hostname"] == "hooks.example.com"  # TLS verifies the name
    assert dns.asked == ["hooks.example.com"]  # one lookup, the one that was checked

    with pytest.raises(OutboundRefused, match="does not resolve to a public address"):
        await post(sender, "https://hooks.example.com/x")  # now rebound to 127.0.0.1
    assert len(guard.requests) == 1
    await sender.aclose()


async def test_a_url_saved_before_the_rules_is_refused_at_send_time(guard: Guard) -> None:
    sender = outbound(guard, Answers())
    for url in ("https://169.254.169.254/latest", "http://127.0.0.1:9/x", "https://[::1]/"):
        with pytest.raises(OutboundRefused):
            await post(sender, url)
    assert guard.requests == []
    await sender.aclose()


async def test_a_redirect_is_not_followed(guard: Guard) -> None:
    with StubServer() as stub:
        stub.respond(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
        sender = outbound(guard, Answers(), allow=("127.0.0.1",))
        assert await post(sender, f"{stub.url}/hook") == 302  # the receiver's answer
        await sender.aclose()
        assert len(stub.requests) == 1
    assert [r.url.host for r in guard.requests] == ["127.0.0.1"]


async def test_an_allow_listed_name_reaches_a_local_fake(guard: Guard) -> None:
    with StubServer() as stub:
        stub.respond(200, {"ok": True})
        port = stub.url.rsplit(":", 1)[1]
        dns = Answers(sink_test=[["127.0.0.1"]])
        sender = outbound(guard, dns, allow=(f"sink.test:{port}",))
        assert await post(sender, f"http://sink.test:{port}/logs") == 200
        await sender.aclose()
        (received,) = stub.requests
    assert received.headers["Host"] == f"sink.test:{port}"
    assert received.body == b'{"n":1}'


async def test_a_header_that_cannot_be_sent_is_one_line(guard: Guard) -> None:
    sender = outbound(guard, Answers(hooks_example_com=[[PUBLIC_IP]]))
    with pytest.raises(OutboundRefused, match="header"):
        await post(sender, "https://hooks.example.com/x", **{"X-Name": "caf\u00e9 \u2615"})
    assert guard.requests == []
    await sender.aclose()


class WatchedExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor, recording every use (loop.getaddrinfo would show here)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.used: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.used.append(getattr(fn, "__qualname__", repr(fn)))
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer({"hooks.example.com": PUBLIC_IP, "rebind.example.com": "127.0.0.1"}) as server:
        yield server


async def test_real_lookups_use_c_ares_not_the_default_thread_pool(
    guard: Guard, dns: DnsServer
) -> None:
    """c-ares against a DNS server on 127.0.0.1: a private answer is refused, a public one
    pinned, and asyncio's shared thread pool is never used for a lookup."""
    watched = WatchedExecutor()
    asyncio.get_running_loop().set_default_executor(watched)
    sender = outbound(guard, AresResolver([dns.address], timeout=5.0, tries=1))
    with pytest.raises(OutboundRefused):
        await post(sender, "https://rebind.example.com/x")
    assert await post(sender, "https://hooks.example.com/x") == 204
    await sender.aclose()
    assert [r.url.host for r in guard.requests] == [PUBLIC_IP]
    assert {"rebind.example.com", "hooks.example.com"} <= dns.names()
    assert watched.used == []


# -- the two features at send time -------------------------------------------------------------


def _job(tenant: str) -> Job:
    moment = datetime.now(UTC)
    return Job("job-1", "usage_trigger", tenant, None, 1, moment, moment)


async def test_a_webhook_rebound_to_a_private_address_is_not_called(
    tmp_path: Path, guard: Guard
) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    keys = Keyring.load(None, tmp_path)
    tenant = new_tenant()
    ServiceStore(engine, keys).tenants.create(tenant)
    store = UsageTriggerStore(engine, keys)
    trigger = store.create(tenant, {"period": "hour", "threshold": 1, "url": "https://h.test/x"})

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    sender = outbound(guard, Answers(h_test=[["169.254.169.254"]]))
    webhooks = TriggerWebhooks(store, run, outbound=sender)
    body = b'{"trigger_id":"' + trigger["id"].encode() + b'"}'
    outcome = await webhooks.run(_job(tenant), body)
    assert isinstance(outcome, Again)  # tried again later, like any failing receiver
    assert guard.requests == []

    sender = outbound(guard, Answers(h_test=[[PUBLIC_IP]]))
    webhooks = TriggerWebhooks(store, run, outbound=sender)
    assert isinstance(await webhooks.run(_job(tenant), body), Done)
    (sent,) = guard.requests
    assert (sent.url.host, sent.headers["host"]) == (PUBLIC_IP, "h.test")
    await webhooks.aclose()
    engine.dispose()


async def test_a_log_stream_sink_rebound_to_a_private_address_is_not_called(
    tmp_path: Path, guard: Guard
) -> None:
    settings = api_settings(tmp_path)

    async def stores() -> Any:
        raise AssertionError("not used by post")

    executor = StoreExecutor()
    jobs = JobRunner(stores, executor, settings, lease=30)
    sender = outbound(guard, Answers(logs_example_com=[["10.0.0.9"]]))
    delivery = LogStreamDelivery(stores, executor, settings, jobs, outbound=sender)
    stream = StreamState(
        id="lst_1",
        tenant="tenant-a",
        endpoint="https://logs.example.com/in",
        content_type="application/json",
        content_format="JSONLINES",
        headers={"Authorization": "Bearer sink"},
        secret="whsec_x",
        categories=[],
        cursor=0,
        failures=0,
        failing_since=None,
    )
    rows = [LogRow(1, "90020260301000000000000001", "gd_send_sms", '{"type":"gd_send_sms"}')]
    error = await delivery.post(stream, rows)
    assert error == (
        "the sink is refused: host logs.example.com does not resolve to a public address"
    )
    assert guard.requests == []
    await delivery.aclose()


# -- the API -----------------------------------------------------------------------------------

SCOPES = [
    "create:log_streams",
    "update:log_streams",
    "read:log_streams",
    "create:usage_triggers",
    "read:usage_triggers",
    "create:phone_providers",
    "read:phone_providers",
    "update:guardian_factors",
    "read:guardian_factors",
]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    settings: Settings = api_settings(tmp_path / "data")
    tenant = new_tenant()
    create_tenants(settings, tenant)
    token = SigningKeys.from_settings(settings).issue(tenant=tenant, scopes=SCOPES, ttl=600)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def _refused(response: httpx.Response, field: str) -> str:
    assert response.status_code == 400, response.text
    message = str(response.json()["message"])
    assert message.startswith(f"{field}: ")
    assert "\n" not in message
    return message


def test_the_api_refuses_private_sinks_and_webhooks_naming_the_field(api: TestClient) -> None:
    for url in ("https://169.254.169.254/latest", "https://[::1]/", "https://0x7f.1/"):
        stream = {"type": "http", "sink": {"httpEndpoint": url}}
        _refused(api.post("/api/v2/log-streams", json=stream), "sink.httpEndpoint")
        trigger = {"period": "hour", "threshold": 5, "url": url}
        _refused(api.post("/api/v2/usage-triggers", json=trigger), "url")
    # loopback over http is no longer a webhook's exception
    trigger = {"period": "hour", "threshold": 5, "url": "http://127.0.0.1:8080/hook"}
    _refused(api.post("/api/v2/usage-triggers", json=trigger), "url")
    assert api.get("/api/v2/log-streams").json() == []
    assert api.get("/api/v2/usage-triggers").json() == []

    good = {"type": "http", "sink": {"httpEndpoint": "https://siem.example.com/in"}}
    created = api.post("/api/v2/log-streams", json=good)
    assert created.status_code == 201, created.text
    patch = {"sink": {"httpEndpoint": "https://10.0.0.1/in"}}
    _refused(
        api.patch(f"/api/v2/log-streams/{created.json()['id']}", json=patch), "sink.httpEndpoint"
    )
    shown = api.get(f"/api/v2/log-streams/{created.json()['id']}").json()
    assert shown["sink"]["httpEndpoint"] == "https://siem.example.com/in"


def test_a_tenant_cannot_set_a_provider_base_url(api: TestClient) -> None:
    provider = {
        "name": "twilio",
        "credentials": {"auth_token": "t" * 32},
        "configuration": {
            "sid": "AC" + "0" * 32,
            "default_from": "+14155550100",
            "delivery_methods": ["text"],
            "base_url": "http://169.254.169.254",
        },
    }
    _refused(api.post("/api/v2/branding/phone/providers", json=provider), "configuration.base_url")
    assert api.get("/api/v2/branding/phone/providers").json() == {"providers": []}
    twilio = {"sid": "AC" + "0" * 32, "base_url": "http://127.0.0.1:9"}
    refused = api.put("/api/v2/guardian/factors/phone/providers/twilio", json=twilio)
    assert refused.status_code == 400, refused.text
    assert "base_url" in refused.json()["message"]
    assert "base_url" not in api.get("/api/v2/guardian/factors/phone/providers/twilio").json()
