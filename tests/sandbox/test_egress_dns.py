"""The DNS bulkhead: one tenant whose names never resolve cannot slow lookups for the others.

Lookups go through c-ares (aiodns) to a DNS server on 127.0.0.1 (tests.support.dns_server)
that answers ``good.test`` and silently drops every ``*.silent.test`` query, as an
authoritative server that never replies would. Both tenants share the one resolver and the
one name server, as in production: only the bulkhead keeps them apart.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from runtime.sandbox.guest.api_stub import _with_json as with_json
from runtime.sandbox.host.egress import (
    AresResolver,
    Egress,
    EgressDenied,
    EgressPolicy,
    InvocationBudget,
)
from runtime.sandbox.host.refusals import ApiRefused
from runtime.sandbox.shared.contract import SandboxLimits
from tests.support.dns_server import DnsServer
from tests.support.stub_server import StubServer

# How long a starving tenant's requests may wait (their own ``timeout``). Every assertion
# about the other tenant is "it finished before any of these did": the other tenant needs a
# few milliseconds per request, so a loaded 2-core CI machine has seconds of margin.
STARVING_TIMEOUT = 4.0
# c-ares gives up on an unanswered query after this: longer than STARVING_TIMEOUT, so the
# first lookups keep the starving tenant's slots for the whole test.
ARES_TIMEOUT = 6.0


def call(url: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"headers": None, "params": None, "json": None, "data": None}
    return {"timeout": None, "method": "GET", "url": url, **base, **fields}


async def send(egress: Egress, tenant: str, params: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    answer = await egress.request(tenant, params, deadline=deadline, budget=InvocationBudget(20))
    seen: dict[str, Any] = with_json(answer)  # as the action sees it: the worker parses it
    return seen


class LocalOnly(httpx.AsyncBaseTransport):
    """The real transport, for 127.0.0.1 only: anything else fails the test."""

    def __init__(self) -> None:
        self._real = httpx.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "127.0.0.1":
            pytest.fail(f"a connection was attempted to {request.url.host}")
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


class WatchedExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor, recording every use (tenant work must not use it)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.used: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.used.append(getattr(fn, "__qualname__", repr(fn)))
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        server.respond(200, {"ok": True})
        yield server


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    def silent(name: str) -> bool:
        return name.endswith("silent.test")

    with DnsServer({"good.test": "127.0.0.1"}, silent=silent) as server:
        yield server


@pytest.fixture
async def egress(stub: StubServer, dns: DnsServer) -> AsyncIterator[Egress]:
    port = stub.url.rsplit(":", 1)[1]
    egress = Egress(
        EgressPolicy(allow_http_hosts=frozenset({f"good.test:{port}"}), dns_lookups_per_tenant=4),
        SandboxLimits(),
        resolver=AresResolver([dns.address], timeout=ARES_TIMEOUT, tries=1),
        transport_factory=LocalOnly,
    )
    yield egress
    await egress.aclose()


async def test_a_tenant_starving_dns_does_not_slow_the_others(
    egress: Egress, stub: StubServer, dns: DnsServer
) -> None:
    loop = asyncio.get_running_loop()
    watched = WatchedExecutor()
    loop.set_default_executor(watched)
    good_url = stub.url.replace("127.0.0.1", "good.test")

    starving = [
        asyncio.create_task(
            send(egress, "starver", call(f"https://n{i}.silent.test/", timeout=STARVING_TIMEOUT))
        )
        for i in range(40)
    ]
    started = time.monotonic()
    for _ in range(10):  # one after the other: each needs its own lookup
        answer = await send(egress, "good", call(f"{good_url}/send"))
        assert answer["json"] == {"ok": True}
    good_took = time.monotonic() - started

    assert not any(task.done() for task in starving), "the other tenant waited for the starver"
    assert good_took < STARVING_TIMEOUT
    assert len(stub.requests) == 10
    results = await asyncio.gather(*starving, return_exceptions=True)
    starving_took = time.monotonic() - started
    # Each ends at its deadline as "timed out" or "does not resolve": never handed off.
    assert all(isinstance(r, ApiRefused) and not r.maybe_sent for r in results), results
    assert starving_took >= STARVING_TIMEOUT * 0.9  # they did wait for their own deadline
    # At most 4 of the starver's names ever reached the name server: its abandoned lookups
    # kept its slots, the other 36 requests waited for a slot and gave up at their deadline.
    silent = {name for name in dns.names() if name.endswith("silent.test")}
    assert len(silent) <= 4, silent
    # Nothing of this used asyncio's default thread pool (getaddrinfo would have).
    assert watched.used == []


async def test_a_lookup_ends_with_the_requests_timeout_and_failures_are_remembered(
    egress: Egress, dns: DnsServer
) -> None:
    started = time.monotonic()
    with pytest.raises(ApiRefused, match=r"timed out|does not resolve") as info:
        await send(egress, "acme", call("https://once.silent.test/", timeout=0.3))
    # Generous: the request's own timeout is 0.3 s, c-ares would wait ARES_TIMEOUT (6 s).
    assert time.monotonic() - started < 3.0
    assert info.value.maybe_sent is False

    asked = dns.queried["once.silent.test"]
    with pytest.raises(EgressDenied, match="does not resolve"):
        await send(egress, "acme", call("https://once.silent.test/", timeout=5))
    assert dns.queried["once.silent.test"] == asked  # the negative cache answered
    assert time.monotonic() - started < 3.0  # no second wait


async def test_negative_cache_is_per_tenant_and_forgets() -> None:
    now = [0.0]
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    from runtime.sandbox.host.egress.dns import DnsBulkhead, LookupFailed

    bulkhead = DnsBulkhead(resolver, clock=lambda: now[0])
    deadline = time.monotonic() + 5
    for tenant in ("a", "a", "b"):
        with pytest.raises(LookupFailed):
            await bulkhead.resolve(tenant, "gone.example", 443, deadline)
    assert asked == ["gone.example", "gone.example"]  # a once, b once
    now[0] = 31.0  # the failure is forgotten after 30 s
    with pytest.raises(LookupFailed):
        await bulkhead.resolve("a", "gone.example", 443, deadline)
    assert len(asked) == 3


async def test_names_resolve_through_c_ares_and_allow_listed_hosts_still_work(
    egress: Egress, stub: StubServer, dns: DnsServer
) -> None:
    good_url = stub.url.replace("127.0.0.1", "good.test")
    answer = await send(egress, "acme", call(f"{good_url}/x"))
    assert answer["status"] == 200
    assert dns.queried["good.test"] >= 1
    assert stub.requests[0].headers["host"] == good_url.removeprefix("http://")
    with pytest.raises(EgressDenied, match="does not resolve"):  # NXDOMAIN
        await send(egress, "acme", call("https://unknown.test/"))
