"""Nothing a tenant's server answers may fill a process-wide cache.

``codecs.lookup`` (``encodings.search_function``) remembers every charset name it is asked
for, found or not; a server answering unique 90 KB names grew the process by 52 MB per 1,000
answers. Charsets now come from a fixed table, and the URL parse caches keep few, short keys.
"""

from __future__ import annotations

import encodings
import gc
import os
import time
from typing import Any

import httpx
import pytest

from runtime.sandbox.guest.api_stub import _with_json as with_json
from runtime.sandbox.host.egress import Egress, EgressPolicy, InvocationBudget
from runtime.sandbox.host.egress import policy as egress_policy
from runtime.sandbox.host.egress.decoding import _SINGLE_BYTE, REPLACE_LIMIT, charset, decoded
from runtime.sandbox.host.refusals import EgressFailed
from runtime.sandbox.shared.contract import SandboxLimits

PUBLIC_V4 = "93.184.215.14"  # an IP literal: no DNS; the fake transport opens no socket


def call(url: str) -> dict[str, Any]:
    base: dict[str, Any] = {"headers": None, "params": None, "json": None, "data": None}
    return {**base, "timeout": None, "method": "GET", "url": url}


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_unique_charset_names_do_not_grow_the_process() -> None:
    counter = iter(range(10**9))

    def answer(_: httpx.Request) -> httpx.Response:
        name = f"x-{next(counter)}-" + "a" * 90_000  # a new 90 KB charset name each time
        headers = {"content-type": f"text/plain; charset={name}"}
        return httpx.Response(200, headers=headers, content="body ü".encode())

    egress = Egress(
        EgressPolicy(max_requests_per_tenant_per_minute=5000),
        SandboxLimits(),
        transport_factory=lambda: httpx.MockTransport(answer),
    )
    codecs_cache = getattr(encodings, "_cache")  # noqa: B009 (private, what leaked)
    try:
        for _ in range(50):  # warm up allocator pools before measuring
            await send(egress)
        gc.collect()
        cached_before, rss_before = len(codecs_cache), rss_bytes()
        for _ in range(1000):
            result = await send(egress)
            assert result["text"] == "body ü"
        gc.collect()
        grown = rss_bytes() - rss_before
    finally:
        await egress.aclose()
    assert len(codecs_cache) == cached_before
    # 1,000 leaked names would be 90 MB; 20 MB leaves room for allocator noise.
    assert grown < 20 * 1024 * 1024, f"RSS grew by {grown / 2**20:.1f} MiB"


async def send(egress: Egress) -> dict[str, Any]:
    answer = await egress.request(
        "acme",
        call(f"https://{PUBLIC_V4}/"),
        deadline=time.monotonic() + 10,
        budget=InvocationBudget(5),
    )
    seen: dict[str, Any] = with_json(answer)  # as the action sees it: the worker parses it
    return seen


@pytest.mark.parametrize(
    ("declared", "codec"),
    [
        ("utf-8", "utf-8"),
        ("UTF8", "utf-8"),
        ('"ISO-8859-1"', "latin-1"),
        ("latin1", "latin-1"),
        ("Windows-1252", "cp1252"),
        ("us-ascii", "ascii"),
        ("UTF-16LE", "utf-16-le"),
        ("utf_16_be", "utf-16-be"),
        ("Shift_JIS", "shift_jis"),
        ("zlib_codec", "utf-8"),  # a real codec, but not a text encoding
        ("punycode", "utf-8"),  # quadratic decoder: never on the event loop
        ("x-unknown", "utf-8"),
        ("a" * 100, "utf-8"),
    ],
)
def test_charsets_come_from_a_fixed_table(declared: str, codec: str) -> None:
    assert charset(f"text/plain; charset={declared}") == codec


def test_url_parse_cache_keeps_few_short_keys() -> None:
    cache = egress_policy._cached_url
    for n in range(2000):
        egress_policy.parse_url(f"https://api.example.com/{n}/" + "p" * 400, None)
    info = cache.cache_info()
    assert info.maxsize == 256
    assert info.currsize <= 256
    long_url = "https://api.example.com/" + "p" * 1500  # over 512 characters: not cached
    for _ in range(3):
        assert egress_policy.parse_url(long_url, None).path.endswith("p")
    assert cache.cache_info()[:2] == info[:2]  # neither a hit nor a miss: never looked up


# -- decoding costs the same whatever the bytes ------------------------------------------------


@pytest.mark.parametrize("codec", sorted(_SINGLE_BYTE))
def test_single_byte_charsets_decode_through_a_table_as_replace_would(codec: str) -> None:
    """A server's 1 MiB of 0x81 as windows-1252 took 0.25 s of the event loop: Python's error
    handler ran once per undefined byte. A full table gives the same text with no error."""
    every_byte = bytes(range(256)) * 4
    assert decoded(every_byte, codec) == every_byte.decode(codec, errors="replace")
    assert decoded(b"\x81" * 1000, codec) == b"\x81".decode(codec, errors="replace") * 1000


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32"])
def test_broken_utf16_and_utf32_are_replaced_only_when_small(codec: str) -> None:
    unit = "\ud800".encode(codec, errors="surrogatepass")  # a lone surrogate: invalid
    unit = unit.removeprefix(b"\xff\xfe\x00\x00")  # utf-32's byte order mark, if any
    small = unit * (REPLACE_LIMIT // len(unit))
    assert set(decoded(small, codec)) == {"\ufffd"}
    with pytest.raises(EgressFailed, match=f"not valid {codec} text"):
        decoded(small + unit, codec)
    assert decoded("ok ü".encode(codec), codec) == "ok ü"
