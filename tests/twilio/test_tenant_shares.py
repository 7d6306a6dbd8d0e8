"""A tenant whose Twilio account answers slowly never takes the connections another tenant
needs (fault test: 150 codes of a slow account made another tenant's 20 codes wait out their
connect timeout and fall back, unsent by their own provider). Both tenants share the base
URL's pool of 100 connections; past its share (a quarter), a tenant takes one only while a
quarter of the pool is left for the others."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from plugins.twilio import TwilioCredentials, TwilioProvider
from plugins.twilio.provider import SDK_POOL_SIZE
from runtime.errors import ProviderError
from runtime.tenant_shares import TenantShares
from tests.support.stub_server import RecordedRequest, StubServer
from tests.twilio.conftest import AUTH_TOKEN, make_config, make_message, message_resource

SLOW = "AC" + "51" * 16
FAST = "AC" + "fa" * 16


async def test_a_slow_account_holds_only_its_share_of_the_pool(
    provider: TwilioProvider, stub: StubServer
) -> None:
    most = TenantShares(SDK_POOL_SIZE).roomy  # three quarters of the pool
    held = threading.Event()  # the slow account holds all it may
    release = threading.Event()
    slow_at_server = [0, 0]  # now, most at once
    lock = threading.Lock()

    def answer(request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        if SLOW not in request.path:
            return 201, message_resource(), {}
        with lock:
            slow_at_server[0] += 1
            slow_at_server[1] = max(slow_at_server)
            if slow_at_server[0] == most:
                held.set()
        release.wait(30)  # the slow account: answers once the test lets it
        with lock:
            slow_at_server[0] -= 1
        return 201, message_resource(), {}

    stub.respond_with(answer)
    config = make_config(stub.url)
    slow_credentials = TwilioCredentials(account_sid=SLOW, auth_token=AUTH_TOKEN)
    fast_credentials = TwilioCredentials(account_sid=FAST, auth_token=AUTH_TOKEN)

    async def slow(number: int, budget: float = 8.0) -> object:
        message = make_message(id=f"s{number}", tenant="slow", timeout=budget)
        try:
            return await provider.send(message, config, slow_credentials)
        except ProviderError as exc:
            return exc

    # more than the whole pool: without shares they would hold all 100 connections
    sending = [asyncio.ensure_future(slow(n)) for n in range(SDK_POOL_SIZE + 20)]
    assert await asyncio.to_thread(held.wait, 30), "the slow account's requests never arrived"
    fast = make_message(id="f1", tenant="fast", timeout=4.0)
    receipt = await provider.send(fast, config, fast_credentials)  # not kept waiting
    assert receipt.message_id
    # one more of the slow tenant's, with a short budget: it waits behind its own, then gives up
    refused = await slow(999, budget=0.4)
    assert isinstance(refused, ProviderError)
    assert (refused.code, refused.handed_off, refused.retryable) == ("tenant_busy", False, True)
    assert "was not sent" in refused.message
    release.set()
    outcomes = await asyncio.gather(*sending)

    assert slow_at_server[1] == most  # the slow tenant never had more in flight
    # each one then went out in turn, or gave up waiting for its turn, unsent
    assert all(
        not isinstance(o, ProviderError) or (o.code, o.handed_off) == ("tenant_busy", False)
        for o in outcomes
    )


@pytest.mark.parametrize("gives_up", [False, True])
async def test_past_its_share_a_tenant_waits_only_while_the_pool_is_busy(gives_up: bool) -> None:
    """The rule itself, on a pool of 8 (a share of 2; 6 in use at most for a tenant past its
    share): a tenant within its share always gets one; past it, waiters are served in order as
    connections come back; one that gave up never keeps one."""
    shares = TenantShares(8)
    assert (shares.share, shares.roomy) == (2, 6)
    assert all(shares.try_take("busy") for _ in range(6))  # alone: three quarters
    assert not shares.try_take("busy")
    assert shares.try_take("other")  # its share, kept for it
    assert shares.try_take("other")
    assert not shares.try_take("other")  # past its share, and the pool is busy
    first = asyncio.ensure_future(shares.take("busy", 5))
    second = asyncio.ensure_future(shares.take("busy", 0.01 if gives_up else 5))
    await asyncio.sleep(0)  # one loop turn: both tasks queue
    if gives_up:
        with pytest.raises(TimeoutError):
            await second
    shares.give_back("busy")  # 7 in use: busy for a tenant past its share
    shares.give_back("other")  # 6
    assert not first.done()
    shares.give_back("other")  # 5: the first waiter's turn
    await first
    assert (shares.held("busy"), shares.held("other")) == (6, 0)
    shares.give_back("busy")  # 5 again: the second's turn, unless it gave up
    if not gives_up:
        await second
        shares.give_back("busy")
    assert shares.held("busy") == 5
    assert shares.try_take("other")  # within its share, whatever the pool
    assert shares.try_take("other")
