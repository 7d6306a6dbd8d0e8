"""runtime.http: the form encoder, and the observer a provider exchange is shown to."""

from __future__ import annotations

import random
import string
from urllib.parse import urlencode

import pytest

from runtime.errors import ProviderError
from runtime.http import HttpRequest, HttpResponse, PooledHttp, form_urlencode
from tests.support.stub_server import Body, RecordedRequest, StubServer, free_port


def test_form_urlencode_writes_what_urllib_writes() -> None:
    alphabet = string.printable + "éü€😀\u00a0+&=%"
    rng = random.Random(20261128)
    for _ in range(5000):
        fields = {
            "".join(rng.choices(alphabet, k=rng.randint(0, 8))): "".join(
                rng.choices(alphabet, k=rng.randint(0, 40))
            )
            for _ in range(rng.randint(1, 4))
        }
        assert form_urlencode(fields) == urlencode(fields), fields


class Recorder:
    """An observer that answers nothing itself and keeps every exchange."""

    def __init__(self, answer: HttpResponse | None = None) -> None:
        self.answer_with = answer
        self.seen: list[tuple[str, int | None, str | None]] = []

    def answer(self, request: HttpRequest) -> HttpResponse | None:
        return self.answer_with

    def record(
        self,
        request: HttpRequest,
        response: HttpResponse | None,
        error: BaseException | None,
        seconds: float,
    ) -> None:
        status = response.status if response is not None else None
        kind = type(error).__name__ if error is not None else None
        self.seen.append((request.url, status, kind))


async def test_the_observer_sees_each_exchange_and_its_failure() -> None:
    http = PooledHttp("Test")
    tap = Recorder()
    try:
        with StubServer() as stub:
            stub.respond(201, {"id": "x"})
            request = HttpRequest.json(f"{stub.url}/a", {})
            answer = await http.send(request, budget=2.0, observer=tap)
            assert answer.json() == {"id": "x"}
            await http.send(request, budget=2.0)  # without an observer: not seen
            refused = f"http://127.0.0.1:{free_port()}/b"
            with pytest.raises(ProviderError) as caught:
                await http.send(HttpRequest.json(refused, {}), budget=2.0, observer=tap)
        assert caught.value.code == "connection_error"
        assert tap.seen == [(f"{stub.url}/a", 201, None), (refused, None, "ProviderError")]
    finally:
        await http.aclose()


async def test_an_observer_can_answer_without_the_network() -> None:
    """A replay's observer answers; the refused port proves nothing was sent."""
    http = PooledHttp("Test")
    tap = Recorder(HttpResponse(200, {}, b'{"ok": true}'))
    try:
        url = f"http://127.0.0.1:{free_port()}/never"
        request = HttpRequest.form(url, {"a": "b c"})
        answer = await http.send(request, budget=2.0, observer=tap)
        assert answer.json() == {"ok": True}
        assert tap.seen == [(url, 200, None)]
    finally:
        await http.aclose()


async def test_no_budget_left_fails_before_sending_and_not_handed_off() -> None:
    http = PooledHttp("Test")
    with pytest.raises(ProviderError) as caught:
        await http.send(HttpRequest.json("http://127.0.0.1:9/x", {}), budget=0)
    assert (caught.value.code, caught.value.handed_off) == ("timeout", False)


async def test_a_tenant_holds_at_most_its_share_of_a_providers_pool() -> None:
    """A tenant whose requests hang holds three quarters of the pool at most: its next request
    waits and gives up unsent (``tenant_busy``, not handed off, so its fallback rules apply),
    while another tenant's request goes straight through."""
    import asyncio
    import threading

    release = threading.Event()
    held = threading.Semaphore(0)

    def answer(request: RecordedRequest) -> tuple[int, Body, dict[str, str]]:
        if request.path.startswith("/slow"):
            held.release()
            release.wait(30)
        return 200, {"ok": True}, {}

    http = PooledHttp("Example", max_connections=8)  # 6 for a tenant past its share of 2
    with StubServer() as stub:
        stub.respond_with(answer)
        slow = HttpRequest("POST", f"{stub.url}/slow", {}, b"{}")
        hanging = [
            asyncio.ensure_future(http.send(slow, budget=8.0, tenant="slow")) for _ in range(6)
        ]
        for _ in range(6):
            assert await asyncio.to_thread(held.acquire, True, 30)
        with pytest.raises(ProviderError) as refused:
            await http.send(slow, budget=0.4, tenant="slow")
        assert (refused.value.code, refused.value.handed_off) == ("tenant_busy", False)
        fast = HttpRequest("POST", f"{stub.url}/fast", {}, b"{}")
        assert (await http.send(fast, budget=4.0, tenant="fast")).status == 200
        release.set()
        assert [r.status for r in await asyncio.gather(*hanging)] == [200] * 6
    await http.aclose()


async def test_tenants_on_other_hosts_never_count_against_each_other() -> None:
    """aiohttp pools connections by host: a tenant hung on its own host (a plugin whose
    base_url is each tenant's) takes none of another host's, so the other tenant's requests
    there go out as if alone."""
    import asyncio
    import threading

    release = threading.Event()
    arrived = {"/x": threading.Semaphore(0), "/y": threading.Semaphore(0)}

    def answer(request: RecordedRequest) -> tuple[int, Body, dict[str, str]]:
        arrived[request.path].release()
        release.wait(30)
        return 200, {"ok": True}, {}

    http = PooledHttp("Example", max_connections=8)  # 6 for a tenant past its share of 2
    with StubServer() as x, StubServer() as y:
        x.respond_with(answer)
        y.respond_with(answer)
        on_x = HttpRequest("POST", f"{x.url}/x", {}, b"{}")
        on_y = HttpRequest("POST", f"{y.url}/y", {}, b"{}")
        sent = [asyncio.ensure_future(http.send(on_x, budget=8.0, tenant="a")) for _ in range(6)]
        for _ in range(6):  # tenant a holds all it may of host x
            assert await asyncio.to_thread(arrived["/x"].acquire, True, 30)
        sent += [asyncio.ensure_future(http.send(on_y, budget=8.0, tenant="b")) for _ in range(6)]
        for _ in range(6):  # tenant b gets as many at host y: a's are not counted there
            assert await asyncio.to_thread(arrived["/y"].acquire, True, 30)
        release.set()
        assert [r.status for r in await asyncio.gather(*sent)] == [200] * 12
    await http.aclose()
