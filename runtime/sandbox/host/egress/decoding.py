"""Reading an answer: a body capped while it streams (and after gzip/deflate), text decoded
with a charset from a fixed table, JSON parsed for JSON content types.

A tenant's server chooses every byte here, so nothing it sends may reach a process-wide cache:
``codecs.lookup`` (through ``encodings.search_function``) remembers every name it is asked
for, found or not, forever; a server answering unique charset names would grow the supervisor
without bound. Charsets are therefore looked up in our own table only.
"""

from __future__ import annotations

import codecs
import functools
import zlib
from contextlib import suppress
from typing import Any

import httpx

from runtime.sandbox.host.refusals import EgressFailed

__all__ = ["REPLACE_LIMIT", "Inflater", "charset", "decoded", "read_body", "result", "too_large"]

# Declared charset (normalised: lower case, "_" and " " as "-") -> Python codec name. Only
# codecs with linear-time decoders: decoding runs on the supervisor's event loop (punycode,
# for one, is quadratic: a 1 MiB body would stall every tenant for half a minute).
_CHARSETS: dict[str, str] = {
    **dict.fromkeys(("utf-8", "utf8"), "utf-8"),
    **dict.fromkeys(("us-ascii", "ascii", "ansi-x3.4-1968"), "ascii"),
    **dict.fromkeys(("iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1"), "latin-1"),
    **dict.fromkeys(("iso-8859-2", "iso8859-2", "latin-2", "latin2"), "iso-8859-2"),
    **dict.fromkeys(("iso-8859-15", "iso8859-15", "latin-9", "latin9"), "iso-8859-15"),
    **dict.fromkeys(("windows-1250", "cp1250"), "cp1250"),
    **dict.fromkeys(("windows-1251", "cp1251"), "cp1251"),
    **dict.fromkeys(("windows-1252", "cp1252"), "cp1252"),
    "utf-16": "utf-16",
    **dict.fromkeys(("utf-16le", "utf-16-le"), "utf-16-le"),
    **dict.fromkeys(("utf-16be", "utf-16-be"), "utf-16-be"),
    "utf-32": "utf-32",
    **dict.fromkeys(("koi8-r", "koi8r"), "koi8-r"),
    **dict.fromkeys(("shift-jis", "sjis", "ms-kanji"), "shift_jis"),
    **dict.fromkeys(("euc-jp", "eucjp"), "euc-jp"),
    "iso-2022-jp": "iso-2022-jp",
    "gb2312": "gb2312",
    "gbk": "gbk",
    "gb18030": "gb18030",
    **dict.fromkeys(("big5", "big-5"), "big5"),
    **dict.fromkeys(("euc-kr", "euckr"), "euc-kr"),
}
_LONGEST = max(map(len, _CHARSETS))
_NORMALISE = str.maketrans({"_": "-", " ": "-"})


def too_large(limit: int) -> EgressFailed:
    return EgressFailed(
        f"response body is larger than {limit} bytes (max_http_response_bytes)", maybe_sent=True
    )


async def read_body(response: httpx.Response, headers: dict[str, str], limit: int) -> bytes:
    """Stream the body; stop as soon as the raw or decoded size passes ``limit``."""
    if response.is_stream_consumed:  # an in-memory body (httpx.MockTransport): decoded already
        if len(response.content) > limit:
            raise too_large(limit)
        return response.content
    declared = headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and (len(declared) > 15 or int(declared) > limit):
        raise too_large(limit)
    inflater = Inflater.for_encoding(headers.get("content-encoding", ""))
    chunks: list[bytes] = []
    size = raw = 0
    async for chunk in response.aiter_raw():
        raw += len(chunk)
        part = chunk if inflater is None else inflater.feed(chunk, limit - size + 1)
        size += len(part)
        if size > limit or raw > limit:
            raise too_large(limit)
        chunks.append(part)
    if inflater is not None:
        tail = inflater.flush()
        if size + len(tail) > limit:
            raise too_large(limit)
        chunks.append(tail)
    return b"".join(chunks)


class Inflater:
    """Bounded gzip/deflate decoding: never produces more than the caller has room for."""

    def __init__(self, gzip: bool) -> None:
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)
        self._may_be_raw = not gzip  # some servers send "deflate" without the zlib header

    @classmethod
    def for_encoding(cls, encoding: str) -> Inflater | None:
        name = encoding.strip().lower()
        if name in ("", "identity"):
            return None
        if name in ("gzip", "x-gzip", "deflate"):
            return cls(gzip=name != "deflate")
        raise EgressFailed(f"unsupported response content-encoding {name[:32]!r}")

    def feed(self, chunk: bytes, room: int) -> bytes:
        out: bytes | None = None
        with suppress(zlib.error):
            out = self._zlib.decompress(chunk, room)
        if out is None and self._may_be_raw:
            self._zlib, self._may_be_raw = zlib.decompressobj(-zlib.MAX_WBITS), False
            return self.feed(chunk, room)
        self._may_be_raw = False
        if out is None:
            raise EgressFailed("response body is not valid gzip/deflate data")
        return out

    def flush(self) -> bytes:
        return self._zlib.flush()


def result(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """Plain data for the tenant: never an httpx object (``api_02``). ``json`` is left to the
    worker, which parses ``text`` at its own cost: a small compressed answer can inflate to a
    megabyte of ``[[],[],...]``, 100 ms of parsing that would stall this event loop."""
    text = decoded(body, charset(headers.get("content-type", "")))
    return {"status": status, "headers": headers, "text": text, "json": None}


def decoded(body: bytes, codec: str) -> str:
    """``body`` as text, invalid bytes as U+FFFD, at a cost linear in the body whatever its
    bytes. Python calls its error handler once per invalid byte for the single-byte and
    UTF-16/32 codecs: 1 MiB of ``0x81`` as windows-1252 took 0.25 s of the event loop. So the
    single-byte codecs decode through a full table (an undefined byte is U+FFFD in it, never
    an error), and a UTF-16/32 body with invalid units is replaced only up to
    :data:`REPLACE_LIMIT` bytes (a provider never sends broken UTF-16)."""
    table = _single_byte_table(codec) if codec in _SINGLE_BYTE else None
    if table is not None:
        return codecs.charmap_decode(body, "strict", table)[0]
    if codec not in _ERROR_HANDLER_PER_UNIT:
        return body.decode(codec, errors="replace")
    try:
        return body.decode(codec)
    except UnicodeDecodeError:
        if len(body) > REPLACE_LIMIT:
            raise EgressFailed(
                f"response body is not valid {codec} text ({len(body)} bytes)", maybe_sent=True
            ) from None
        return body.decode(codec, errors="replace")


REPLACE_LIMIT = 64 * 1024
"""The largest UTF-16/32 body whose invalid units are replaced rather than refused."""

_SINGLE_BYTE = frozenset({"cp1250", "cp1251", "cp1252", "iso-8859-2", "iso-8859-15", "koi8-r"})
_ERROR_HANDLER_PER_UNIT = frozenset({"utf-16", "utf-16-le", "utf-16-be", "utf-32"})


@functools.cache
def _single_byte_table(codec: str) -> str:
    """Each of the 256 bytes decoded by ``codec``, U+FFFD where it defines none."""
    return "".join(bytes([byte]).decode(codec, errors="replace") for byte in range(256))


def charset(content_type: str) -> str:
    """The codec for the declared charset if it is in the table, else UTF-8; never a codecs
    lookup of the server's name (see the module docstring)."""
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            name = value.strip().strip("\"'")
            if len(name) > _LONGEST:
                return "utf-8"
            return _CHARSETS.get(name.lower().translate(_NORMALISE), "utf-8")
    return "utf-8"
