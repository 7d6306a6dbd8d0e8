"""``SupervisorServices``: dispatch of worker ``api`` calls, and refusals that leak nothing."""

from __future__ import annotations

import logging
import ssl
import time
import traceback
from collections import OrderedDict
from typing import Any

import httpx
import pytest

from runtime.sandbox.host.cache import ActionCache
from runtime.sandbox.host.context import InvocationContext
from runtime.sandbox.host.egress import (
    Egress,
    EgressDenied,
    EgressFailed,
    EgressPolicy,
    InvocationBudget,
)
from runtime.sandbox.host.refusals import ApiRefused
from runtime.sandbox.host.services import SupervisorServices
from runtime.sandbox.shared.contract import SandboxLimits, Trigger
from tests.sandbox.test_egress import PUBLIC_V4, FakeDns, FakeNet, call, no_connection, reply

SECRET = "s3cret-10.20.30.40-/etc/phone-actions/keys"


def services(net: FakeNet) -> SupervisorServices:
    dns = FakeDns({"api.example.com": [[PUBLIC_V4]]})
    egress = Egress(EgressPolicy(), SandboxLimits(), resolver=dns, transport_factory=net.factory)
    return SupervisorServices(egress, ActionCache())


async def handle(
    svc: SupervisorServices,
    op: Any,
    params: Any,
    tenant: str = "acme",
    trigger: Trigger = "send-phone-message",
) -> Any:
    return await svc.handle(context(tenant, trigger), op, params)


def context(
    tenant: str = "acme",
    trigger: Trigger = "send-phone-message",
    *,
    deadline: float | None = None,
    budget: int = 20,
) -> InvocationContext:
    """The pool's context of one invocation, 10 s to run unless ``deadline`` says otherwise."""
    return InvocationContext(
        tenant=tenant,
        trigger=trigger,
        limits=SandboxLimits(),
        deadline=time.monotonic() + 10 if deadline is None else deadline,
        http_budget=InvocationBudget(budget),
    )


async def refusal(
    svc: SupervisorServices, op: Any, params: Any, tenant: str = "acme"
) -> ApiRefused:
    with pytest.raises(ApiRefused) as info:
        await handle(svc, op, params, tenant)
    error = info.value
    assert error.__cause__ is None
    assert error.__context__ is None
    frames = traceback.extract_tb(error.__traceback__)
    assert not [f for f in frames if "egress" in f.filename or "httpx" in f.filename]
    assert SECRET not in error.message
    return error


async def test_http_request_is_dispatched_to_egress() -> None:
    body = b'{"sid": "SM1"}'
    net = FakeNet(lambda _: reply(201, body, {"content-type": "application/json"}))
    svc = services(net)
    result = await handle(svc, "http.request", call("https://api.example.com/m", "POST", json={}))
    assert result["status"] == 201
    # the text only: the worker parses it (a JSON bomb costs the tenant's CPU, not this loop)
    assert (result["text"], result["json"]) == ('{"sid": "SM1"}', None)
    assert net.dials[0].ip == PUBLIC_V4
    await svc.aclose()


async def test_cache_ops_are_dispatched_per_tenant() -> None:
    svc = services(FakeNet(no_connection))
    stored = await handle(svc, "cache.set", {"key": "k", "value": "v", "ttl": 1000})
    assert stored == {"type": "success"}
    assert (await handle(svc, "cache.get", {"key": "k"}))["value"] == "v"
    assert await handle(svc, "cache.get", {"key": "k"}, tenant="other") is None
    assert await handle(svc, "cache.get", {"key": "k"}, trigger="custom-phone-provider") is None
    assert await handle(svc, "cache.delete", {"key": "k"}, tenant="other") == stored
    assert (await handle(svc, "cache.get", {"key": "k"}))["value"] == "v"
    assert await handle(svc, "cache.delete", {"key": "k"}) == stored
    assert await handle(svc, "cache.get", {"key": "k"}) is None


async def test_cache_is_scoped_to_the_trigger_of_the_context() -> None:
    """The trigger comes from the pool's context: a record set by one trigger's action is not
    seen by the same tenant's other trigger."""
    svc = services(FakeNet(no_connection))
    await handle(svc, "cache.set", {"key": "k", "value": "v"}, trigger="send-phone-message")
    assert await handle(svc, "cache.get", {"key": "k"}, trigger="custom-phone-provider") is None
    assert (await handle(svc, "cache.get", {"key": "k"}))["value"] == "v"


async def test_a_worker_cannot_name_another_tenant() -> None:
    svc = services(FakeNet(no_connection))
    await handle(svc, "cache.set", {"key": "k", "value": "a"}, tenant="victim")
    error = await refusal(svc, "cache.get", {"key": "k", "tenant": "victim"}, tenant="attacker")
    assert error.message == "api.cache.get: unknown parameter 'tenant'"
    await refusal(svc, "http.request", {**call("https://api.example.com/"), "tenant": "victim"})


@pytest.mark.parametrize("op", ["http.get", "secrets.get", "cache.__class__", "", 5, None])
async def test_unknown_ops_are_refused(op: Any) -> None:
    error = await refusal(services(FakeNet(no_connection)), op, {})
    assert error.message.startswith("unknown api operation")


@pytest.mark.parametrize("params", [None, [], "key=k", 5, OrderedDict(key="k")])
async def test_params_must_be_a_plain_object(params: Any) -> None:
    error = await refusal(services(FakeNet(no_connection)), "cache.get", params)
    assert error.message == "api.cache.get: params must be an object"


async def test_refusals_keep_their_kind_and_are_fresh() -> None:
    svc = services(FakeNet(no_connection))
    denied = await refusal(svc, "http.request", call("http://api.example.com/"))
    assert type(denied) is EgressDenied
    assert denied.message == "plain http is not allowed for api.example.com; use https"
    bad_key = await refusal(svc, "cache.get", {"key": 5})
    assert bad_key.message == "cache key must be a string (got int)"


async def test_network_errors_show_the_tenant_no_host_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"[Errno 111] Connection refused ({SECRET})", request=request)

    caplog.set_level(logging.INFO)
    error = await refusal(
        services(FakeNet(refuse)), "http.request", call("https://api.example.com/")
    )
    assert type(error) is EgressFailed
    assert error.message == "could not connect to api.example.com"
    assert "Errno 111" in caplog.text  # the detail stays in the host log


async def test_tls_failures_are_named_without_details() -> None:
    def bad_cert(request: httpx.Request) -> httpx.Response:
        try:
            raise ssl.SSLCertVerificationError(SECRET)
        except ssl.SSLError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc

    error = await refusal(
        services(FakeNet(bad_cert)), "http.request", call("https://api.example.com/")
    )
    assert error.message == "TLS handshake with api.example.com failed (certificate or protocol)"


async def test_host_bugs_become_a_generic_refusal_and_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError(SECRET)

    error = await refusal(
        services(FakeNet(broken)), "http.request", call("https://api.example.com/")
    )
    assert type(error) is EgressFailed
    assert error.message == "request to api.example.com failed"
    assert error.maybe_sent is True  # the transport may have sent it: no second code
    [record] = [r for r in caplog.records if r.name == "runtime.sandbox.host.egress"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None  # the traceback is kept server-side
    assert SECRET not in error.message


async def test_cache_calls_respect_the_deadline() -> None:
    svc = services(FakeNet(no_connection))
    past = time.monotonic() - 1
    with pytest.raises(ApiRefused, match="deadline reached") as info:
        await svc.handle(context(deadline=past, budget=1), "cache.get", {"key": "k"})
    assert info.value.__context__ is None


async def test_the_tenant_must_come_from_the_supervisor() -> None:
    svc = services(FakeNet(no_connection))
    with pytest.raises(TypeError, match="supervisor"):
        await handle(svc, "cache.get", {"key": "k"}, tenant="")
