"""``ActionCache``: Auth0's ``api.cache`` answers and limits, lifetimes on a fake clock, and
isolation between tenants and between the two triggers of one tenant."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.sandbox.guest.executor import invoke_source
from runtime.sandbox.guest.guards import ApiError
from runtime.sandbox.host.cache import (
    DEFAULT_TTL_MS,
    ERROR_CODES,
    MAX_ENTRIES,
    MAX_TENANT_BYTES,
    MAX_TTL_MS,
    ActionCache,
    CacheRecord,
    CacheRefused,
    CacheStore,
    MemoryCacheStore,
)
from runtime.sandbox.host.runner import SandboxRunner
from runtime.sandbox.shared.contract import SandboxLimits
from tests.support.events import load_event

T0 = 1_700_000_000_000  # epoch ms
SPM = "send-phone-message"
CPP = "custom-phone-provider"
SUCCESS = {"type": "success"}


class Clock:
    """Epoch seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> float:
        return self.ms / 1000

    def advance(self, ms: int) -> None:
        self.ms += ms


class Cache:
    """``ActionCache`` for one trigger (send-phone-message unless told), as the tests call it."""

    def __init__(self, cache: ActionCache) -> None:
        self.inner = cache

    async def get(self, tenant: str, key: Any, trigger: str = SPM) -> dict[str, Any] | None:
        return await self.inner.get(tenant, key, trigger=trigger)

    async def set(
        self, tenant: str, key: Any, value: Any, trigger: str = SPM, **lifetime: Any
    ) -> dict[str, Any]:
        return await self.inner.set(tenant, key, value, trigger=trigger, **lifetime)

    async def delete(self, tenant: str, key: Any, trigger: str = SPM) -> dict[str, Any]:
        return await self.inner.delete(tenant, key, trigger=trigger)

    async def value(self, tenant: str, key: str, trigger: str = SPM) -> str | None:
        record = await self.get(tenant, key, trigger)
        return None if record is None else record["value"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryCacheStore:
    return MemoryCacheStore()


@pytest.fixture
def cache(store: MemoryCacheStore, clock: Clock) -> Cache:
    return Cache(ActionCache(store, clock=clock))


def failed(answer: dict[str, Any], code: str, fragment: str) -> None:
    """``answer`` is Auth0's error result with ``code`` and a one-line message."""
    assert answer["type"] == "error"
    assert answer["code"] == code
    assert code in ERROR_CODES
    assert fragment in answer["message"]
    assert "\n" not in answer["message"]


async def test_set_answers_success_and_get_the_record(cache: Cache, clock: Clock) -> None:
    assert await cache.set("acme", "otp:15550100", '{"n": 1}') == SUCCESS
    record = {"value": '{"n": 1}', "expires_at": T0 + DEFAULT_TTL_MS}
    assert await cache.get("acme", "otp:15550100") == record
    clock.advance(DEFAULT_TTL_MS - 1)
    assert await cache.get("acme", "otp:15550100") == record
    clock.advance(1)
    assert await cache.get("acme", "otp:15550100") is None


@pytest.mark.parametrize(
    ("ttl", "expires_at", "expected"),
    [
        (1000, None, T0 + 1000),
        (1500.7, None, T0 + 1500),
        (None, T0 + 5000, T0 + 5000),
        (None, T0 + 5000.9, T0 + 5000),
        (1000, T0 + 5000, T0 + 1000),  # both: the earlier wins
        (9000, T0 + 5000, T0 + 5000),
        (2 * MAX_TTL_MS, None, T0 + MAX_TTL_MS),  # at most 24 h
        (10**400, None, T0 + MAX_TTL_MS),
        (None, T0 + 2 * MAX_TTL_MS, T0 + MAX_TTL_MS),
    ],
)
async def test_lifetimes(cache: Cache, ttl: Any, expires_at: Any, expected: int) -> None:
    assert await cache.set("acme", "k", "v", ttl=ttl, expires_at=expires_at) == SUCCESS
    assert (await cache.get("acme", "k") or {})["expires_at"] == expected


@pytest.mark.parametrize(
    ("ttl", "expires_at", "code"),
    [
        *[(0, None, "invalid_ttl"), (-5, None, "invalid_ttl"), (0.4, None, "invalid_ttl")],
        *[(True, None, "invalid_ttl"), ("60000", None, "invalid_ttl")],
        (float("inf"), None, "invalid_ttl"),
        *[(None, T0, "invalid_expires_at"), (None, T0 - 1, "invalid_expires_at")],
        *[(None, "tomorrow", "invalid_expires_at"), (None, float("nan"), "invalid_expires_at")],
        (1000, T0 - 1, "invalid_expires_at"),
    ],
)
async def test_bad_lifetimes_answer_an_error(
    cache: Cache, ttl: Any, expires_at: Any, code: str
) -> None:
    failed(await cache.set("acme", "k", "v", ttl=ttl, expires_at=expires_at), code, code[8:])
    assert await cache.get("acme", "k") is None


@pytest.mark.parametrize(
    "key",
    [
        "auth0|64b7f0c2a1",  # a user id: refused before, Auth0 allows it
        "token:auth0|64b7f0c2a1:sms",
        "a b",
        "../x",
        "ü",
        "*",
        "k\n",
        "x" * 64,
        "é" * 32,  # 64 bytes of UTF-8
    ],
)
async def test_any_key_of_up_to_64_bytes(cache: Cache, key: str) -> None:
    assert await cache.set("acme", key, "v") == SUCCESS
    assert await cache.value("acme", key) == "v"
    assert await cache.delete("acme", key) == SUCCESS
    assert await cache.get("acme", key) is None


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("", "1 to 64 bytes of UTF-8 (got 0)"),
        ("x" * 65, "1 to 64 bytes of UTF-8 (got 65)"),
        ("é" * 33, "(got 66)"),
        ("\ud800", "valid Unicode"),
    ],
)
async def test_keys_over_64_bytes_answer_an_error(cache: Cache, key: str, fragment: str) -> None:
    failed(await cache.set("acme", key, "v"), "invalid_key", fragment)
    failed(await cache.delete("acme", key), "invalid_key", fragment)
    assert await cache.get("acme", key) is None  # no record can have that key


@pytest.mark.parametrize("key", [None, 5, b"key", ["k"]])
async def test_non_string_keys(cache: Cache, key: Any) -> None:
    failed(await cache.set("acme", key, "v"), "invalid_key", "must be a string")
    with pytest.raises(CacheRefused, match="cache key must be a string"):  # a hostile worker
        await cache.get("acme", key)


@pytest.mark.parametrize("value", [{"a": 1}, ["a"], 5, 1.5, True, None, b"bytes"])
async def test_only_string_values(cache: Cache, value: Any) -> None:
    failed(await cache.set("acme", "k", value), "invalid_value", "must be a string")


async def test_value_size_is_counted_in_utf8_bytes(cache: Cache) -> None:
    assert await cache.set("acme", "a", "x" * 4096) == SUCCESS
    assert await cache.set("acme", "b", "é" * 2048, trigger=CPP) == SUCCESS  # 4096 bytes
    failed(await cache.set("acme", "c", "x" * 4097), "value_too_large", "4097 bytes")
    failed(await cache.set("acme", "c", "é" * 2049), "value_too_large", "limit of 4096")
    failed(await cache.set("acme", "c", "\ud800"), "invalid_value", "valid Unicode")
    assert await cache.get("acme", "c") is None


async def test_tenants_never_see_each_others_keys(cache: Cache) -> None:
    await cache.set("tenant-a", "token", "a-secret")
    assert await cache.get("tenant-b", "token") is None
    await cache.set("tenant-b", "token", "b-value")
    assert await cache.value("tenant-a", "token") == "a-secret"
    assert await cache.delete("tenant-b", "token") == SUCCESS
    assert await cache.delete("tenant-b", "token") == SUCCESS  # nothing there: still success
    assert await cache.value("tenant-a", "token") == "a-secret"


async def test_the_two_triggers_of_a_tenant_have_their_own_entries(cache: Cache) -> None:
    await cache.set("acme", "token", "for-sms-hook")
    assert await cache.get("acme", "token", CPP) is None
    await cache.set("acme", "token", "for-custom-provider", CPP)
    assert await cache.value("acme", "token") == "for-sms-hook"
    assert await cache.value("acme", "token", CPP) == "for-custom-provider"
    await cache.delete("acme", "token", CPP)
    assert await cache.value("acme", "token") == "for-sms-hook"
    for n in range(MAX_ENTRIES):  # one trigger's churn never evicts the other's records
        await cache.set("acme", f"fill{n}", "x" * 400, CPP, ttl=10)
    assert await cache.value("acme", "token") == "for-sms-hook"


async def test_a_tenant_holds_at_most_its_limits(cache: Cache, store: MemoryCacheStore) -> None:
    for trigger in (SPM, CPP):
        for n in range(200):
            await cache.set("greedy", f"key-{n:03}-" + "k" * 50, "v" * 4096, trigger)
    for trigger in (SPM, CPP):
        records, size = store.usage(f"{trigger}:greedy")
        assert records <= MAX_ENTRIES
        assert size <= MAX_TENANT_BYTES
    with pytest.raises(TypeError, match="supervisor"):  # no third namespace to grow into
        await cache.set("greedy", "k", "v", trigger="post-login")


async def test_twenty_entries_evicting_the_soonest_to_expire(cache: Cache) -> None:
    for n in range(20):
        await cache.set("acme", f"k{n}", "v", ttl=60_000 + n)
    await cache.set("acme", "k20", "v", ttl=60_000 + 20)
    assert await cache.get("acme", "k0") is None  # expired soonest
    assert all([await cache.get("acme", f"k{n}") for n in range(1, 21)])
    await cache.set("acme", "short", "v", ttl=10)  # a new key still evicts an existing one
    assert await cache.get("acme", "k1") is None
    await cache.set("acme", "k21", "v", ttl=60_000)
    assert await cache.get("acme", "short") is None
    assert await cache.get("acme", "k2") is not None
    assert await cache.get("other", "k1") is None


async def test_equal_lifetimes_evict_the_oldest_write(cache: Cache) -> None:
    for n in range(21):
        await cache.set("acme", f"k{n}", "v", ttl=60_000)
    assert await cache.get("acme", "k0") is None
    assert await cache.get("acme", "k20") is not None


async def test_eight_kilobytes_of_keys_and_values(cache: Cache) -> None:
    await cache.set("acme", "a", "x" * 4000, ttl=3000)
    await cache.set("acme", "b", "x" * 4000, ttl=1000)
    await cache.set("acme", "c", "x" * 4000, ttl=2000)  # 12 kB: "b" (soonest) makes room
    assert [k for k in "abc" if await cache.get("acme", k)] == ["a", "c"]
    await cache.set("acme", "a", "x" * 100)  # overwriting frees its old bytes
    await cache.set("acme", "d", "x" * 4000)
    assert [k for k in "abcd" if await cache.get("acme", k)] == ["a", "c", "d"]
    await cache.set("other", "a", "x" * 4096)  # another tenant's budget
    assert [k for k in "abcd" if await cache.get("acme", k)] == ["a", "c", "d"]


async def test_keys_count_in_utf8_bytes_towards_the_total(
    cache: Cache, store: MemoryCacheStore
) -> None:
    await cache.set("acme", "é" * 32, "x" * 4000)
    assert store.usage(f"{SPM}:acme") == (1, 64 + 4000)


async def test_expired_records_go_before_live_ones(cache: Cache, clock: Clock) -> None:
    for n in range(19):
        await cache.set("acme", f"live{n}", "v", ttl=3_600_000)
    await cache.set("acme", "old", "v", ttl=1000)
    clock.advance(2000)
    await cache.set("acme", "new", "v")
    assert all([await cache.get("acme", f"live{n}") for n in range(19)])


async def test_idle_tenants_are_swept(cache: Cache, store: MemoryCacheStore, clock: Clock) -> None:
    await cache.set("idle", "k", "v", ttl=1000)
    clock.advance(120_000)
    await cache.get("busy", "k")
    assert store.usage(f"{SPM}:idle") == (0, 0)  # the sweep dropped it already


async def test_the_store_is_a_protocol(clock: Clock) -> None:
    class Recording:
        def __init__(self) -> None:
            self.puts: list[tuple[str, str, CacheRecord, int]] = []

        async def get(self, namespace: str, key: str, now_ms: int) -> CacheRecord | None:
            return None

        async def put(self, namespace: str, key: str, record: CacheRecord, now_ms: int) -> None:
            self.puts.append((namespace, key, record, now_ms))

        async def delete(self, namespace: str, key: str) -> bool:
            return False

    recording = Recording()
    store: CacheStore = recording
    await ActionCache(store, clock=clock).set("acme", "k", "v", trigger=CPP, ttl=5)
    assert recording.puts == [(f"{CPP}:acme", "k", CacheRecord("v", T0 + 5, 1, 2), T0)]


@pytest.mark.parametrize(("tenant", "trigger"), [("", SPM), ("acme", ""), ("acme", "post-login")])
async def test_tenant_and_trigger_come_from_the_supervisor(
    cache: Cache, tenant: str, trigger: str
) -> None:
    with pytest.raises(TypeError, match="supervisor"):
        await cache.get(tenant, "k", trigger)


# The tenant's side: api.cache in the worker ------------------------------------------------


class Channel:
    """The worker's RPC link, served by a real ``ActionCache`` for one tenant and trigger."""

    def __init__(self, cache: ActionCache, trigger: str = SPM) -> None:
        self.cache = cache
        self.trigger = trigger
        self.ops: list[str] = []

    def call(self, op: str, params: dict[str, Any]) -> Any:
        self.ops.append(op)
        name = op.removeprefix("cache.")
        coroutine = getattr(self.cache, name)("acme", trigger=self.trigger, **params)
        try:
            coroutine.send(None)  # the memory store never suspends
        except StopIteration as done:
            return done.value
        raise AssertionError("the memory store suspended")


def act(body: str, channel: Channel) -> Any:
    """Run ``body`` as a send-phone-message action with ``channel``; its return value."""
    lines = "".join(f"    {line}\n" for line in body.splitlines())
    source = f"def on_execute_send_phone_message(event, api):\n{lines}"
    result = invoke_source(
        source,
        name="cache",
        trigger="send-phone-message",
        event=load_event("spm_sms_verify_us"),
        channel=channel,
        limits=SandboxLimits(),
    )
    assert result.outcome == "ok", result.error
    return result.result


def test_an_action_reads_auth0_answers(clock: Clock) -> None:
    channel = Channel(ActionCache(clock=clock))
    body = """
user = "auth0|64b7f0c2a1"
stored = api.cache.set("token:" + user, "t-1", {"ttl": 60000})
record = api.cache.get("token:" + user)
return {"set": stored.type, "value": record.value, "at": record.expires_at,
        "deleted": api.cache.delete("token:" + user).type, "after": api.cache.get("token:" + user)}
"""
    assert act(body, channel) == {
        "set": "success",
        "value": "t-1",
        "at": T0 + 60_000,
        "deleted": "success",
        "after": None,
    }


@pytest.mark.parametrize(
    ("call", "code", "sent"),
    [
        ("api.cache.set('k', {'a': 1})", "invalid_value", False),
        ("api.cache.set('k', 'x' * 5000)", "value_too_large", False),
        ("api.cache.set('k', 'é' * 2049)", "value_too_large", True),  # bytes: the supervisor's
        ("api.cache.set('k' * 65, 'v')", "invalid_key", False),
        ("api.cache.set('é' * 33, 'v')", "invalid_key", True),
        ("api.cache.set(5, 'v')", "invalid_key", False),
        ("api.cache.set('k', 'v', ttl='1')", "invalid_ttl", False),
        ("api.cache.set('k', 'v', {'ttl': -1})", "invalid_ttl", True),
        ("api.cache.set('k', 'v', expires_at=1)", "invalid_expires_at", True),
        ("api.cache.set('k', 'v', {'tll': 5})", "invalid_options", False),
        ("api.cache.delete('')", "invalid_key", False),
    ],
)
def test_bad_writes_answer_an_error_instead_of_raising(
    clock: Clock, call: str, code: str, sent: bool
) -> None:
    channel = Channel(ActionCache(clock=clock))
    answer = act(f"answer = {call}\nreturn [answer.type, answer.code, answer.message]", channel)
    assert answer[:2] == ["error", code]
    assert answer[2]
    assert channel.ops == (["cache.set"] if sent and "set" in call else [])


def test_a_write_past_the_deadline_answers_unavailable() -> None:
    class Late:
        def call(self, op: str, params: dict[str, Any]) -> Any:
            raise ApiError("api.cache.set: invocation deadline reached")

    answer = act("return api.cache.set('k', 'v')", Late())  # type: ignore[arg-type]
    assert answer == {
        "type": "error",
        "code": "unavailable",
        "message": "api.cache.set: invocation deadline reached",
    }


# Through the real sandbox: the pool hands the services the invocation's trigger ------------

SWAP = """
def {handler}(event, api):
    before = api.cache.get("token:auth0|64b7f0c2a1")
    api.cache.set("token:auth0|64b7f0c2a1", "{mark}")
    return None if before is None else before.value
"""


async def test_each_trigger_and_tenant_has_its_own_records_in_the_sandbox() -> None:
    events = {SPM: load_event("spm_sms_verify_us"), CPP: load_event("cpp_text_verify_au")}
    handlers = {SPM: "on_execute_send_phone_message", CPP: "on_execute_custom_phone_provider"}

    async with SandboxRunner(limits=SandboxLimits(timeout=10)) as runner:

        async def swap(tenant: str, trigger: Any, mark: str) -> Any:
            source = SWAP.format(handler=handlers[trigger], mark=mark)
            result = await runner.run(
                tenant=tenant, name="swap", source=source, trigger=trigger, event=events[trigger]
            )
            assert result.outcome == "ok", result.error
            return result.result

        assert await swap("acme", SPM, "acme-spm") is None
        assert await swap("acme", CPP, "acme-cpp") is None  # not the other trigger's record
        assert await swap("globex", SPM, "globex-spm") is None  # not the other tenant's
        assert await swap("acme", SPM, "acme-spm-2") == "acme-spm"
        assert await swap("acme", CPP, "acme-cpp-2") == "acme-cpp"
        assert await swap("globex", SPM, "globex-spm-2") == "globex-spm"
