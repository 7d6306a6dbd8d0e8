"""``ActionCache``: Auth0's ``api.cache`` limits, lifetimes on a fake clock, tenant isolation."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.sandbox.cache import (
    DEFAULT_TTL_MS,
    MAX_TTL_MS,
    ActionCache,
    CacheRecord,
    CacheRefused,
    CacheStore,
    MemoryCacheStore,
)

T0 = 1_700_000_000_000  # epoch ms


class Clock:
    """Epoch seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> float:
        return self.ms / 1000

    def advance(self, ms: int) -> None:
        self.ms += ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> ActionCache:
    return ActionCache(clock=clock)


async def test_set_and_get_with_the_default_lifetime(cache: ActionCache, clock: Clock) -> None:
    stored = await cache.set("acme", "otp:15550100", '{"n": 1}')
    assert stored == {"value": '{"n": 1}', "expires_at": T0 + DEFAULT_TTL_MS}
    assert await cache.get("acme", "otp:15550100") == stored
    clock.advance(DEFAULT_TTL_MS - 1)
    assert await cache.get("acme", "otp:15550100") == stored
    clock.advance(1)
    assert await cache.get("acme", "otp:15550100") is None


@pytest.mark.parametrize(
    ("ttl", "expires_at", "expected"),
    [
        (1000, None, T0 + 1000),
        (1500.7, None, T0 + 1500),
        (None, T0 + 5000, T0 + 5000),
        (1000, T0 + 5000, T0 + 1000),  # both: the earlier wins
        (9000, T0 + 5000, T0 + 5000),
        (2 * MAX_TTL_MS, None, T0 + MAX_TTL_MS),  # at most 24 h
        (None, T0 + 2 * MAX_TTL_MS, T0 + MAX_TTL_MS),
    ],
)
async def test_lifetimes(cache: ActionCache, ttl: Any, expires_at: Any, expected: int) -> None:
    stored = await cache.set("acme", "k", "v", ttl=ttl, expires_at=expires_at)
    assert stored["expires_at"] == expected


@pytest.mark.parametrize(
    ("ttl", "expires_at"),
    [
        *[(0, None), (-5, None), (True, None), ("60000", None), (float("inf"), None)],
        *[(None, T0), (None, T0 - 1), (None, "tomorrow"), (None, float("nan"))],
    ],
)
async def test_bad_lifetimes_are_refused(cache: ActionCache, ttl: Any, expires_at: Any) -> None:
    with pytest.raises(CacheRefused, match=r"ttl|expires_at"):
        await cache.set("acme", "k", "v", ttl=ttl, expires_at=expires_at)


@pytest.mark.parametrize("key", ["", "a" * 65, "a/b", "a b", "../x", "ü", "k\n", "*"])
async def test_bad_keys_are_refused(cache: ActionCache, key: str) -> None:
    for call in (cache.get("acme", key), cache.set("acme", key, "v"), cache.delete("acme", key)):
        with pytest.raises(CacheRefused, match="1-64 characters"):
            await call


@pytest.mark.parametrize("key", [None, 5, b"key", ["k"]])
async def test_non_string_keys_are_refused(cache: ActionCache, key: Any) -> None:
    with pytest.raises(CacheRefused, match="cache key must be a string"):
        await cache.get("acme", key)


async def test_keys_may_use_the_whole_allowed_alphabet(cache: ActionCache) -> None:
    key = "Az09_.:-" + "x" * 56
    await cache.set("acme", key, "v")
    assert (await cache.get("acme", key)) is not None


@pytest.mark.parametrize("value", [{"a": 1}, ["a"], 5, 1.5, True, None, b"bytes"])
async def test_only_string_values(cache: ActionCache, value: Any) -> None:
    with pytest.raises(CacheRefused, match="cache value must be a string"):
        await cache.set("acme", "k", value)


async def test_value_size_is_counted_in_utf8_bytes(cache: ActionCache) -> None:
    await cache.set("acme", "a", "x" * 4096)
    await cache.set("acme", "b", "é" * 2048)  # 4096 bytes
    for value in ("x" * 4097, "é" * 2049):
        with pytest.raises(CacheRefused, match="larger than 4096 bytes"):
            await cache.set("acme", "c", value)
    with pytest.raises(CacheRefused, match="valid Unicode"):
        await cache.set("acme", "c", "\ud800")


async def test_tenants_never_see_each_others_keys(cache: ActionCache) -> None:
    await cache.set("tenant-a", "token", "a-secret")
    assert await cache.get("tenant-b", "token") is None
    await cache.set("tenant-b", "token", "b-value")
    assert (await cache.get("tenant-a", "token") or {})["value"] == "a-secret"
    assert await cache.delete("tenant-b", "token") is True
    assert await cache.delete("tenant-b", "token") is False
    assert (await cache.get("tenant-a", "token") or {})["value"] == "a-secret"


async def test_twenty_entries_evicting_the_soonest_to_expire(cache: ActionCache) -> None:
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


async def test_equal_lifetimes_evict_the_oldest_write(cache: ActionCache) -> None:
    for n in range(21):
        await cache.set("acme", f"k{n}", "v", ttl=60_000)
    assert await cache.get("acme", "k0") is None
    assert await cache.get("acme", "k20") is not None


async def test_eight_kilobytes_per_tenant(cache: ActionCache) -> None:
    await cache.set("acme", "a", "x" * 4000, ttl=3000)
    await cache.set("acme", "b", "x" * 4000, ttl=1000)
    await cache.set("acme", "c", "x" * 4000, ttl=2000)  # 12 kB: "b" (soonest) makes room
    assert [k for k in "abc" if await cache.get("acme", k)] == ["a", "c"]
    await cache.set("acme", "a", "x" * 100)  # overwriting frees its old bytes
    await cache.set("acme", "d", "x" * 4000)
    assert [k for k in "abcd" if await cache.get("acme", k)] == ["a", "c", "d"]
    await cache.set("other", "a", "x" * 4096)  # another tenant's budget


async def test_expired_records_go_before_live_ones(cache: ActionCache, clock: Clock) -> None:
    for n in range(19):
        await cache.set("acme", f"live{n}", "v", ttl=3_600_000)
    await cache.set("acme", "old", "v", ttl=1000)
    clock.advance(2000)
    await cache.set("acme", "new", "v")
    assert all([await cache.get("acme", f"live{n}") for n in range(19)])


async def test_idle_tenants_are_swept(clock: Clock) -> None:
    store = MemoryCacheStore()
    cache = ActionCache(store, clock=clock)
    await cache.set("idle", "k", "v", ttl=1000)
    clock.advance(120_000)
    await cache.get("busy", "k")
    assert await store.delete("idle", "k") is False  # the sweep dropped it already


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
    await ActionCache(store, clock=clock).set("acme", "k", "v", ttl=5)
    assert recording.puts == [("acme", "k", CacheRecord("v", T0 + 5, 1), T0)]


async def test_tenant_comes_from_the_supervisor(cache: ActionCache) -> None:
    with pytest.raises(TypeError, match="supervisor"):
        await cache.get("", "k")
