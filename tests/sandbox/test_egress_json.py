"""``json=`` bodies: NaN and infinity are refused with an ApiError, never sent as null.

Through the real sandbox (worker, facade, RPC frame, supervisor): the frame encoder would
write NaN as ``null`` silently, so the refusal has to happen where the tenant's value is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from runtime.sandbox.host.egress import EgressPolicy
from runtime.sandbox.host.runner import SandboxRunner
from tests.support.stub_server import StubServer

ACTION = """
def on_execute_send_phone_message(event, api):
    value = float(event.secrets.VALUE)
    try:
        api.http.post(event.secrets.URL, json={"to": "+447911123456", "score": [1, value]})
    except ApiError as error:
        return {"refused": str(error)}
    return {"refused": None}
"""


@pytest.fixture
def fake() -> Iterator[StubServer]:
    with StubServer() as server:
        server.respond(200, {"id": "x"})
        yield server


@pytest.fixture
async def runner(fake: StubServer) -> AsyncIterator[SandboxRunner]:
    hosts = frozenset({fake.url.removeprefix("http://")})
    async with SandboxRunner(policy=EgressPolicy(allow_http_hosts=hosts)) as sandbox:
        yield sandbox


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "2.5"])
async def test_nan_and_infinity_in_json_are_refused(
    runner: SandboxRunner, fake: StubServer, value: str
) -> None:
    result = await runner.run(
        tenant="acme",
        name="json",
        source=ACTION,
        trigger="send-phone-message",
        event={"message_options": {"recipient": "+447911123456"}},
        secrets={"URL": fake.url, "VALUE": value},
    )
    assert result.outcome == "ok", result.error
    if value == "2.5":
        assert result.result == {"refused": None}
        assert fake.requests[0].body == b'{"to":"+447911123456","score":[1,2.5]}'
        return
    assert result.result == {
        "refused": "json must not contain NaN or infinity (they have no JSON form)"
    }
    assert fake.requests == []  # nothing was sent, not even with a null in its place
    assert result.handed_off is False
