"""``Egress``: tenant HTTP through the supervisor, and the ``api_*`` SSRF attack classes.

Real sockets go to 127.0.0.1 only (StubServer, an aiohttp server). Every other address is
handled by an injected resolver and a fake transport that records the "dial" (pinned IP, Host,
SNI) and answers without any socket; where nothing may be dialled, it fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from runtime.sandbox.guest.api_stub import _with_json as with_json
from runtime.sandbox.host import egress as egress_module
from runtime.sandbox.host.egress import (
    Egress,
    EgressDenied,
    EgressFailed,
    EgressPolicy,
    InvocationBudget,
    is_public_address,
)
from runtime.sandbox.host.refusals import ApiRefused
from runtime.sandbox.shared.contract import SandboxLimits
from tests.support.stub_server import StubServer, free_port

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


def call(url: str, method: str = "GET", **fields: Any) -> dict[str, Any]:
    """An ``http.request`` payload as the worker's facade sends it (None = not given)."""
    base: dict[str, Any] = {"headers": None, "params": None, "json": None, "data": None}
    return {**base, "timeout": None, "method": method, "url": url, **fields}


@dataclass
class Dial:
    ip: str
    port: int | None
    host: str | None
    sni: str | None
    request: httpx.Request


class Chunks(httpx.AsyncByteStream):
    """A response body that streams, as a real transport's does (httpx pre-reads bytes)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._data), 4096):
            yield self._data[start : start + 4096]


def reply(
    status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, headers=headers, stream=Chunks(body))


@dataclass
class FakeNet:
    """Transport factory with no sockets: records each request and answers from ``answer``."""

    answer: Callable[[httpx.Request], httpx.Response] = lambda _: httpx.Response(200, json={})
    dials: list[Dial] = field(default_factory=list)
    transports: int = 0
    closed: int = 0

    def factory(self) -> httpx.AsyncBaseTransport:
        self.transports += 1
        net = self

        class Transport(httpx.MockTransport):
            async def aclose(self) -> None:
                net.closed += 1

        return Transport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        sni = request.extensions.get("sni_hostname")
        self.dials.append(
            Dial(request.url.host, request.url.port, request.headers.get("host"), sni, request)
        )
        return self.answer(request)


def no_connection(request: httpx.Request) -> httpx.Response:
    pytest.fail(f"a connection was attempted to {request.url.host}")


@dataclass
class FakeDns:
    """Resolver for tests: answers from a table (a list per name: one answer per call)."""

    table: dict[str, list[list[str]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answers = self.table.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers.pop(0) if len(answers) > 1 else answers[0]


def make(
    net: FakeNet | None = None, dns: FakeDns | None = None, **policy: Any
) -> tuple[Egress, FakeNet, FakeDns]:
    net = net or FakeNet(no_connection)
    dns = dns or FakeDns()
    limits = policy.pop("limits", SandboxLimits())
    egress = Egress(
        EgressPolicy(**policy), limits, resolver=dns, transport_factory=net.factory, **{}
    )
    return egress, net, dns


async def send(egress: Egress, params: dict[str, Any], **kw: Any) -> dict[str, Any]:
    budget = kw.pop("budget", None) or InvocationBudget(20)
    deadline = kw.pop("deadline", None) or time.monotonic() + 10
    tenant = kw.pop("tenant", "acme")
    # as the action sees it: the worker parses a JSON answer's text
    seen: dict[str, Any] = with_json(
        await egress.request(tenant, params, deadline=deadline, budget=budget)
    )
    return seen


async def refused(egress: Egress, params: dict[str, Any], kind: type[ApiRefused]) -> str:
    with pytest.raises(kind) as info:
        await send(egress, params)
    assert info.value.__context__ is None
    assert info.value.__cause__ is None
    return info.value.message


def assert_plain(value: Any) -> None:
    """Only JSON data types, exactly (no httpx objects, no subclasses): ``api_02``."""
    if type(value) is dict:
        for key, item in value.items():
            assert type(key) is str
            assert_plain(item)
    elif type(value) is list:
        for item in value:
            assert_plain(item)
    else:
        assert type(value) in (str, int, float, bool, type(None)), type(value)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=False)  # loading CA certificates takes ~30 ms


class LocalOnly(httpx.AsyncBaseTransport):
    """The real transport, for 127.0.0.1 only: anything else fails the test."""

    def __init__(self) -> None:
        self._real = httpx.AsyncHTTPTransport(verify=_ssl_context(), trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "127.0.0.1":
            pytest.fail(f"a connection was attempted to {request.url.host}")
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:  # stop() releases hung handlers: no sleeps anywhere
        yield server


@pytest.fixture
async def local(stub: StubServer) -> AsyncIterator[Egress]:
    """Egress allowed to reach the stub server over plain http, and nothing else."""
    port = stub.url.rsplit(":", 1)[1]
    egress = Egress(
        EgressPolicy(allow_http_hosts=frozenset({f"127.0.0.1:{port}"})),
        SandboxLimits(max_http_response_bytes=4096),
        resolver=FakeDns(),
        transport_factory=LocalOnly,
    )
    yield egress
    await egress.aclose()


# --- success against a real local server ------------------------------------------------------


async def test_get_to_local_server_returns_plain_data(local: Egress, stub: StubServer) -> None:
    stub.respond(200, {"sid": "SM1", "n": [1, 2.5, None]}, {"X-Trace": "abc"})
    result = await send(
        local, call(f"{stub.url}/v1?a=1", headers={"X-Key": "k"}, params={"b": "2"})
    )
    assert result["status"] == 200
    assert result["json"] == {"sid": "SM1", "n": [1, 2.5, None]}
    assert result["headers"]["x-trace"] == "abc"
    assert result["headers"]["content-type"] == "application/json"
    assert_plain(result)
    seen = stub.requests[0]
    assert seen.query == {"a": ["1"], "b": ["2"]}
    assert seen.headers["x-key"] == "k"
    assert seen.headers["host"] == stub.url.removeprefix("http://")


async def test_post_json_and_form_bodies(local: Egress, stub: StubServer) -> None:
    stub.respond(201, "created")
    result = await send(local, call(stub.url, "post", json={"to": "+1555", "ü": True}))
    assert result == {
        "status": 201,
        "headers": result["headers"],
        "text": "created",
        "json": None,
    }
    await send(local, call(stub.url, "PUT", data={"To": "+1555", "Body": "a b&c"}))
    await send(local, call(stub.url, "PATCH", data="raw text"))
    json_req, form_req, text_req = stub.requests
    assert json_req.body == '{"to":"+1555","ü":true}'.encode()
    assert json_req.headers["content-type"] == "application/json"
    assert form_req.form == {"To": ["+1555"], "Body": ["a b&c"]}
    assert text_req.body == b"raw text"


async def test_response_json_only_for_json_content_types(local: Egress, stub: StubServer) -> None:
    cases = [
        ("text/plain", b'{"a": 1}', None),
        ("application/json", b"{not json", None),
        ("application/json", b'{"a": NaN}', None),
        ("application/json", b"[" * 2000 + b"]" * 2000, None),
        ("application/problem+json; charset=utf-8", b'{"title": "x"}', {"title": "x"}),
    ]
    for content_type, body, expected in cases:
        stub.respond(200, body, {"Content-Type": content_type})
        result = await send(local, call(stub.url))
        assert result["json"] == expected, content_type
        assert result["text"] == body.decode()


async def test_text_is_decoded_leniently_and_only_with_text_codecs(
    local: Egress, stub: StubServer
) -> None:
    stub.respond(200, "café".encode("latin-1"), {"Content-Type": "text/plain; charset=latin-1"})
    assert (await send(local, call(stub.url)))["text"] == "café"
    stub.respond(200, b"\xff\xfeok", {"Content-Type": "text/plain"})
    assert (await send(local, call(stub.url)))["text"] == "\ufffd\ufffdok"
    bomb = gzip.compress(b"x" * 100)  # charset=zlib_codec must not inflate anything
    stub.respond(200, bomb, {"Content-Type": "text/plain; charset=zlib_codec"})
    assert (await send(local, call(stub.url)))["text"] == bomb.decode("utf-8", "replace")


async def test_cookies_never_carry_over_between_requests(local: Egress, stub: StubServer) -> None:
    stub.respond(200, "ok", {"Set-Cookie": "session=tenant-a; Path=/"})
    await send(local, call(stub.url), tenant="a")
    await send(local, call(stub.url), tenant="b")
    assert "cookie" not in stub.requests[1].headers


async def test_headers_on_the_wire_are_the_defaults_under_the_tenants(
    local: Egress, stub: StubServer
) -> None:
    """The runtime's default headers, overridden by the tenant's, with Host on the name and
    a body's length: what an httpx client with our user-agent sent, now without the client."""
    stub.respond(200, "ok")
    await send(local, call(stub.url))
    await send(
        local,
        call(f"{stub.url}/x#frag", "POST", json={"a": 1}, headers={"Accept": "application/json"}),
    )
    plain, posted = (r.headers for r in stub.requests)
    host = stub.url.split("://", 1)[1]
    assert (plain["user-agent"], plain["accept"], plain["host"]) == ("phone-actions", "*/*", host)
    assert plain["accept-encoding"] == "gzip, deflate"
    assert "content-length" not in plain
    assert posted["accept"] == "application/json"
    assert posted["content-type"] == "application/json"
    assert posted["content-length"] == str(len(b'{"a":1}'))
    assert stub.requests[1].path == "/x"


async def test_redirects_are_followed_and_each_hop_counts(local: Egress, stub: StubServer) -> None:
    def handler(request: Any) -> tuple[int, Any, dict[str, str]]:
        if request.path == "/start":
            return 303, b"", {"Location": "/done"}
        return 200, {"method": request.method}, {}

    stub.respond_with(handler)
    budget = InvocationBudget(5)
    result = await send(local, call(f"{stub.url}/start", "POST", json={}), budget=budget)
    assert result["json"] == {"method": "GET"}  # 303: GET without the body
    assert budget.used == 2


async def test_redirect_loops_are_capped(local: Egress, stub: StubServer) -> None:
    stub.respond(302, b"", {"Location": "/again"})
    message = await refused(local, call(f"{stub.url}/again"), EgressDenied)
    assert "too many redirects" in message
    assert len(stub.requests) == 4  # the request and max_redirects=3 hops


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:10.0.0.1]/",
        "https://2130706433/",
        "file:///etc/passwd",
        "https://user:pw@api.example.com/",
    ],
)
async def test_redirects_to_forbidden_places_are_refused(
    local: Egress, stub: StubServer, location: str
) -> None:
    stub.respond(302, b"", {"Location": location})
    await refused(local, call(stub.url), EgressDenied)
    assert len(stub.requests) == 1


async def test_deadline_bounds_a_server_that_never_answers(local: Egress, stub: StubServer) -> None:
    stub.hang()
    started = time.monotonic()
    with pytest.raises(EgressFailed, match="timed out"):
        await send(local, call(stub.url), deadline=time.monotonic() + 0.3)
    # The stub never answers: ending at all shows the deadline. Generous for a loaded CI machine.
    assert time.monotonic() - started < 5.0
    with pytest.raises(EgressFailed, match="timed out"):
        await send(local, call(stub.url, timeout=0.2), deadline=time.monotonic() + 60)


async def test_no_time_left_sends_nothing(local: Egress, stub: StubServer) -> None:
    with pytest.raises(EgressFailed, match="no time left"):
        await send(local, call(stub.url), deadline=time.monotonic() - 1)
    assert stub.requests == []


async def test_connection_refused_gives_a_message_without_internals() -> None:
    port = free_port()
    egress = Egress(
        EgressPolicy(allow_http_hosts=frozenset({f"127.0.0.1:{port}"})),
        SandboxLimits(),
        resolver=FakeDns(),
        transport_factory=LocalOnly,
    )
    message = await refused(egress, call(f"http://127.0.0.1:{port}/"), EgressFailed)
    assert message == "could not connect to 127.0.0.1"
    await egress.aclose()
    with pytest.raises(EgressFailed, match="shut down"):
        await send(egress, call(f"http://127.0.0.1:{port}/"))


# --- response size -------------------------------------------------------------------------------


async def test_declared_oversize_response_is_refused(local: Egress, stub: StubServer) -> None:
    stub.respond(200, b"x" * 5000)
    message = await refused(local, call(stub.url), EgressFailed)
    assert message == "response body is larger than 4096 bytes (max_http_response_bytes)"


@pytest.fixture
async def aio() -> AsyncIterator[str]:
    """A real aiohttp server on 127.0.0.1 (backlog 128): ``/`` answers JSON, ``/endless`` never
    ends its chunked body."""

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        with contextlib.suppress(Exception):
            while True:
                await response.write(b"x" * 1024)
        return response

    app = web.Application()
    app.router.add_get("/", ok)
    app.router.add_get("/endless", endless)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    await runner.cleanup()


def allowing(url: str, **limits: Any) -> Egress:
    """Egress that may reach the local server at ``url`` (real sockets, 127.0.0.1 only)."""
    return Egress(
        EgressPolicy(allow_http_hosts=frozenset({url.removeprefix("http://")})),
        SandboxLimits(**limits),
        resolver=FakeDns(),
        transport_factory=LocalOnly,
    )


async def test_endless_response_is_cut_at_the_cap(aio: str) -> None:
    egress = allowing(aio, max_http_response_bytes=64 * 1024)
    message = await refused(egress, call(f"{aio}/endless"), EgressFailed)
    assert "65536 bytes (max_http_response_bytes)" in message
    await egress.aclose()


async def test_compression_bomb_stops_at_the_cap() -> None:
    bomb = gzip.compress(b"\0" * 10_000_000)  # ~10 kB on the wire
    net = FakeNet(lambda _: reply(200, bomb, {"content-encoding": "gzip"}))
    dns = FakeDns({"api.example.com": [[PUBLIC_V4]]})
    egress, _, _ = make(net, dns, limits=SandboxLimits(max_http_response_bytes=1 << 20))
    message = await refused(egress, call("https://api.example.com/"), EgressFailed)
    assert "max_http_response_bytes" in message
    small = gzip.compress(b'{"ok": true}')
    net.answer = lambda _: reply(
        200, small, {"content-encoding": "gzip", "content-type": "application/json"}
    )
    assert (await send(egress, call("https://api.example.com/")))["json"] == {"ok": True}


# --- destination checks (nothing may be dialled) ---------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://2130706433/",
        "https://0177.0.0.1/",
        "https://0x7f.1/",
        "https://0x7f000001/",
        "https://127.1/",
        "https://127.0.1/",
        "https://017700000001/",
        "https://127.0.0.1./",
        "https://0/",
        "https://[::1]/",
        "https://[::]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:7f00:1]/",
        "https://[::127.0.0.1]/",
        "https://[0:0:0:0:0:0:0:1]/",
        "https://127.0.0.%31/",
        "https://localhost.0x7f/",
    ],
)
async def test_loopback_in_any_encoding_is_refused(url: str) -> None:
    egress, net, dns = make(allow_http_hosts=frozenset({"127.0.0.1"}))
    await refused(egress, call(url), EgressDenied)
    assert net.dials == []
    assert dns.calls == []


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "172.16.5.4",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "198.18.0.1",
        "[fd00::1]",
        "[fc00::1]",
        "[fe80::1]",
        "[fec0::1]",
        "[ff02::1]",
        "[2001:db8::1]",
        "[2002:7f00:1::]",
        "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
        "[64:ff9b::a00:1]",
        "[::ffff:169.254.169.254]",
    ],
)
async def test_private_and_special_addresses_are_refused(host: str) -> None:
    egress, net, _ = make()
    message = await refused(egress, call(f"https://{host}/"), EgressDenied)
    assert "not a public address" in message
    assert net.dials == []


@pytest.mark.parametrize(
    "answer",
    [
        ["10.1.2.3"],
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["::1"],
        ["fd12:3456::1"],
        ["fe80::1%eth0"],
        [PUBLIC_V4, "192.168.0.10"],
        ["::ffff:10.0.0.1"],
        [],
        ["not-an-ip"],
    ],
)
async def test_names_resolving_to_private_addresses_are_refused(answer: list[str]) -> None:
    egress, net, dns = make(dns=FakeDns({"sneaky.example.com": [answer]}))
    message = await refused(egress, call("https://sneaky.example.com/"), EgressDenied)
    assert message == "host sneaky.example.com does not resolve to a public address"
    assert net.dials == []
    assert dns.calls == ["sneaky.example.com"]


async def test_unresolvable_name_looks_like_a_private_one() -> None:
    egress, net, _ = make()
    message = await refused(egress, call("https://db.internal/"), EgressDenied)
    assert message == "host db.internal does not resolve to a public address"
    assert net.dials == []


async def test_dns_rebinding_cannot_move_the_connection() -> None:
    dns = FakeDns({"rebind.example.com": [[PUBLIC_V4], ["127.0.0.1"]]})
    egress, net, _ = make(FakeNet(), dns)
    await send(egress, call("https://rebind.example.com/x?y=1"))
    [dial] = net.dials
    assert (dial.ip, dial.host, dial.sni) == (PUBLIC_V4, "rebind.example.com", "rebind.example.com")
    assert dial.request.url.path == "/x"
    assert dial.request.url.query == b"y=1"
    assert dns.calls == ["rebind.example.com"]  # resolved once; the connection used that answer
    await refused(egress, call("https://rebind.example.com/"), EgressDenied)  # now 127.0.0.1
    assert len(net.dials) == 1


async def test_ipv6_pins_and_names_keep_separate_pools() -> None:
    dns = FakeDns({"a.example.com": [[PUBLIC_V6]], "b.example.com": [[PUBLIC_V6]]})
    egress, net, _ = make(FakeNet(), dns)
    await send(egress, call("https://a.example.com:443/"))
    await send(egress, call("https://a.example.com/"))
    await send(egress, call("https://b.example.com/"))
    assert [d.ip for d in net.dials] == [PUBLIC_V6] * 3
    assert [d.sni for d in net.dials] == ["a.example.com", "a.example.com", "b.example.com"]
    assert net.transports == 2  # a connection verified for a.example.com never serves b


async def test_refused_connection_moves_on_to_the_next_pinned_address() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == PUBLIC_V6:
            raise httpx.ConnectError("Network is unreachable", request=request)
        return httpx.Response(200, json={})

    dns = FakeDns({"api.example.com": [[PUBLIC_V6, PUBLIC_V4]]})
    egress, net, _ = make(FakeNet(answer), dns)
    assert (await send(egress, call("https://api.example.com/")))["status"] == 200
    assert [d.ip for d in net.dials] == [PUBLIC_V6, PUBLIC_V4]


async def test_allow_listed_names_may_resolve_to_private_addresses() -> None:
    dns = FakeDns({"sms-gateway.internal": [["10.0.0.5"]]})
    egress, net, _ = make(FakeNet(), dns, allow_http_hosts=frozenset({"sms-gateway.internal"}))
    await send(egress, call("http://sms-gateway.internal/send"))
    assert (net.dials[0].ip, net.dials[0].host) == ("10.0.0.5", "sms-gateway.internal")
    assert "port 8080" in await refused(
        egress, call("https://sms-gateway.internal:8080/"), EgressDenied
    )


async def test_idle_origins_beyond_the_cap_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(egress_module, "_MAX_ORIGINS", 2)
    names = [f"h{n}.example.com" for n in range(4)]
    egress, net, _ = make(FakeNet(), FakeDns({name: [[PUBLIC_V4]] for name in names}))
    for name in names:
        await send(egress, call(f"https://{name}/"), budget=InvocationBudget(99))
    assert (net.transports, net.closed) == (4, 2)
    await egress.aclose()
    assert net.closed == 4


async def test_many_concurrent_requests_share_small_pools(aio: str) -> None:
    made: list[LocalOnly] = []

    def factory() -> httpx.AsyncBaseTransport:
        made.append(LocalOnly())
        return made[-1]

    egress = Egress(
        EgressPolicy(allow_http_hosts=frozenset({aio.removeprefix("http://")})),
        SandboxLimits(),
        resolver=FakeDns(),
        transport_factory=factory,
    )
    results = await asyncio.gather(
        *(send(egress, call(aio), budget=InvocationBudget(1)) for _ in range(50))
    )
    assert [r["json"] for r in results] == [{"ok": True}] * 50
    assert 1 <= len(made) <= 13  # shards of 4 connections, opened only when all are busy
    await egress.aclose()


async def test_https_to_an_ip_literal_sends_no_sni() -> None:
    egress, net, _ = make(FakeNet())
    await send(egress, call(f"https://{PUBLIC_V4}/"))
    assert net.dials[0].sni is None
    assert net.dials[0].host == PUBLIC_V4


async def test_redirect_to_a_private_name_is_refused_after_revalidation() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["host"] == "api.example.com":
            return reply(302, headers={"location": "https://internal.example.com/admin"})
        pytest.fail("the redirect target was dialled")

    dns = FakeDns({"api.example.com": [[PUBLIC_V4]], "internal.example.com": [["10.0.0.7"]]})
    egress, net, _ = make(FakeNet(answer), dns)
    message = await refused(egress, call("https://api.example.com/"), EgressDenied)
    assert message == "host internal.example.com does not resolve to a public address"
    assert dns.calls == ["api.example.com", "internal.example.com"]
    assert len(net.dials) == 1


async def test_credentials_are_not_forwarded_to_another_origin() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/one":
            return reply(307, headers={"location": "/two"})
        if request.url.path == "/two":
            return reply(308, headers={"location": "https://other.example.com/three"})
        return reply(200)

    dns = FakeDns({"api.example.com": [[PUBLIC_V4]], "other.example.com": [[PUBLIC_V4]]})
    egress, net, _ = make(FakeNet(answer), dns)
    headers = {"Authorization": "Bearer s3cret", "X-Api-Key": "k", "Accept": "text/plain"}
    await send(egress, call("https://api.example.com/one", "DELETE", headers=headers))
    first, same, other = (d.request for d in net.dials)
    assert first.headers["x-api-key"] == "k"
    assert same.headers["authorization"] == "Bearer s3cret"
    assert "authorization" not in other.headers
    assert "x-api-key" not in other.headers
    assert other.headers["accept"] == "text/plain"
    assert other.method == "DELETE"  # 307/308 keep the method (a body only within the origin)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@api.example.com/",
        "https://api.example.com@evil.example.com/",
        "https://evil.example.com\\@api.example.com/",
        "https://@api.example.com/",
        "https://:@api.example.com/",
    ],
)
async def test_userinfo_is_refused(url: str) -> None:
    egress, net, dns = make()
    assert "credentials" in await refused(egress, call(url), EgressDenied)
    assert net.dials == []
    assert dns.calls == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://api.example.com:8443/", "port 8443 is not allowed"),
        ("https://api.example.com:22/", "port 22 is not allowed"),
        ("https://api.example.com:99999/", "port 99999 is not valid"),
        ("http://api.example.com/", "plain http is not allowed"),
        ("http://127.0.0.1:8080/", "plain http is not allowed"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("ftp://api.example.com/", "scheme 'ftp'"),
        ("gopher://api.example.com:70/_x", "scheme 'gopher'"),
        ("data:text/plain,hi", "scheme 'data'"),
        ("//api.example.com/", "scheme ''"),
        ("https:///path", "no host"),
        ("https://exa mple.com/", "invalid host name"),
        ("https://[fe80::1%25eth0]/", "zone ids"),
        ("https://xn--/", "invalid host name"),
        ("https://%6c%6fcalhost/", "invalid host name"),
    ],
)
async def test_schemes_ports_and_malformed_hosts_are_refused(url: str, reason: str) -> None:
    egress, net, dns = make(allow_http_hosts=frozenset({"127.0.0.1:8081"}))
    assert reason in await refused(egress, call(url), EgressDenied)
    assert net.dials == []
    assert dns.calls == []


# --- request validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"headers": {"X-A": "1\r\nHost: evil"}}, "CR, LF or NUL"),
        ({"headers": {"X-A\n": "1"}}, "CR, LF or NUL"),
        ({"headers": {"X-A": "a\0b"}}, "CR, LF or NUL"),
        ({"headers": {"X A": "1"}}, "not a valid HTTP token"),
        ({"headers": {"X-A": "é"}}, "printable ASCII"),
        ({"headers": {"X-A": "x" * 9000}}, "printable ASCII"),
        ({"headers": {"Host": "internal"}}, "set by the runtime"),
        ({"headers": {"Transfer-Encoding": "chunked"}}, "set by the runtime"),
        ({"headers": {"Proxy-Foo": "1"}}, "set by the runtime"),
        ({"headers": {"a": "1", "A": "2"}}, "given twice"),
        ({"headers": {f"h{i}": "v" for i in range(65)}}, "at most 64 headers"),
        ({"headers": {f"h{i}": "v" * 8000 for i in range(3)}}, "16384 bytes"),
        ({"headers": {"X-A": 1}}, "must be strings"),
        ({"headers": ["X-A", "1"]}, "object of strings"),
        ({"method": "TRACE"}, "method must be one of"),
        ({"method": "CONNECT"}, "method must be one of"),
        ({"method": None}, "method must be one of"),
        ({"url": b"https://api.example.com/"}, "url must be a string"),
        ({"url": "https://api.example.com/" + "a" * 2048}, "longer than 2048"),
        ({"url": "https://api.example.com/\r\nX: y"}, "control characters"),
        ({"params": {"a": 1}}, "strings to strings"),
        ({"params": {"a": "x" * 2040}}, "url with params is longer"),
        ({"json": {"a": 1}, "data": "x", "method": "POST"}, "at most one of json and data"),
        ({"json": {"a": 1}}, "a GET request has no body"),
        ({"json": float("nan"), "method": "POST"}, "plain JSON"),
        ({"data": 5, "method": "POST"}, "data must be a string"),
        ({"data": "\ud800", "method": "POST"}, "valid Unicode"),
        ({"timeout": -1}, "timeout must be a positive"),
        ({"timeout": True}, "timeout must be a positive"),
        ({"tenant": "other"}, "unknown http.request parameter"),
    ],
)
async def test_bad_requests_are_refused_before_any_network(
    fields: dict[str, Any], reason: str
) -> None:
    egress, net, dns = make()
    budget = InvocationBudget(20)
    with pytest.raises(EgressDenied) as info:
        await send(egress, {**call("https://api.example.com/"), **fields}, budget=budget)
    assert reason in info.value.message
    assert net.dials == []
    assert dns.calls == []
    assert budget.used == 0


async def test_oversize_request_body_is_refused() -> None:
    egress, net, _ = make(limits=SandboxLimits(max_http_request_bytes=100))
    message = await refused(
        egress, call("https://a.example.com/", "POST", data="x" * 101), EgressDenied
    )
    assert message == "request body is larger than 100 bytes (max_http_request_bytes)"
    assert net.dials == []


# --- quotas -----------------------------------------------------------------------------------


async def test_per_invocation_budget() -> None:
    egress, net, _ = make(FakeNet(), FakeDns({"a.example.com": [[PUBLIC_V4]]}))
    budget = InvocationBudget.for_limits(SandboxLimits(max_http_requests=2))
    for _ in range(2):
        await send(egress, call("https://a.example.com/"), budget=budget)
    with pytest.raises(EgressDenied, match="at most 2 requests per invocation"):
        await send(egress, call("https://a.example.com/"), budget=budget)
    assert len(net.dials) == 2


async def test_per_tenant_quota_is_a_sliding_minute() -> None:
    now = [1000.0]
    egress = Egress(
        EgressPolicy(max_requests_per_tenant_per_minute=3),
        SandboxLimits(),
        resolver=FakeDns({"a.example.com": [[PUBLIC_V4]]}),
        transport_factory=FakeNet().factory,
        clock=lambda: now[0],
    )
    for step in (0.0, 10.0, 20.0):
        now[0] += step
        await send(egress, call("https://a.example.com/"), budget=InvocationBudget(99))
    with pytest.raises(EgressDenied, match="at most 3 requests a minute"):
        await send(egress, call("https://a.example.com/"), budget=InvocationBudget(99))
    await send(egress, call("https://a.example.com/"), tenant="other")  # tenants are separate
    now[0] += 31.0  # the first request is now more than a minute old
    await send(egress, call("https://a.example.com/"), budget=InvocationBudget(99))


async def test_many_response_headers_count_against_the_tenants_minute_quota(
    stub: StubServer,
) -> None:
    """h11 parses header lines in Python on the event loop: a tenant's server answering with
    hundreds of headers spends the tenant's quota, one request per 100 headers."""
    port = stub.url.rsplit(":", 1)[1]
    egress = Egress(
        EgressPolicy(
            allow_http_hosts=frozenset({f"127.0.0.1:{port}"}), max_requests_per_tenant_per_minute=5
        ),
        SandboxLimits(),
        resolver=FakeDns(),
        transport_factory=LocalOnly,
    )
    try:
        stub.respond(200, b"ok", {f"x-h{n}": "v" for n in range(300)})
        await send(egress, call(f"{stub.url}/a"), budget=InvocationBudget(99))  # 1 + 3
        await send(egress, call(f"{stub.url}/b"), budget=InvocationBudget(99))  # 5th: allowed
        with pytest.raises(EgressDenied, match="at most 5 requests a minute"):
            await send(egress, call(f"{stub.url}/c"), budget=InvocationBudget(99))
        assert [r.path for r in stub.requests] == ["/a", "/b"]
    finally:
        await egress.aclose()


async def test_a_response_header_block_over_the_limit_fails_as_a_hand_off(
    local: Egress, stub: StubServer
) -> None:
    """Over 24 KiB of headers is never parsed; the request was written, so the failure says
    the message may have reached the server."""
    stub.respond(200, b"ok", {f"x-header-{n:05d}": "v" * 20 for n in range(1000)})  # ~36 KiB
    with pytest.raises(EgressFailed) as info:
        await send(local, call(f"{stub.url}/send", method="POST", json={"a": 1}))
    assert info.value.maybe_sent
    stub.respond(200, b"ok", {f"x-header-{n:05d}": "v" * 20 for n in range(300)})  # ~11 KiB
    assert (await send(local, call(f"{stub.url}/send")))["status"] == 200


# --- units ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        (PUBLIC_V6, True),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::808:808", True),
        ("64:ff9b::7f00:1", False),
        ("::ffff:127.0.0.1", False),
        ("::7f00:1", False),
        ("2002:808:808::1", False),
        ("192.0.0.9", False),
        ("203.0.113.5", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    from ipaddress import ip_address

    assert is_public_address(ip_address(address)) is public


@pytest.mark.parametrize("entry", ["", "host:", "host:0", "host:70000", "[::1]:x"])
def test_policy_rejects_bad_allow_entries(entry: str) -> None:
    with pytest.raises(ValueError, match="allow_http_hosts"):
        EgressPolicy(allow_http_hosts=frozenset({entry}))
