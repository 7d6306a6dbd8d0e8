"""The log sink at close on a full disk: lines the file still refuses are retried for a bounded
time, then written whole to stderr after one line naming the file and the count, never lost.

What a user relies on: every delivery reported before a shutdown has its log event, in the file
or, when the file cannot take it, on stderr (the journal keeps it for an operator to append);
each exactly once; and the shutdown still ends. A full disk is real here: ``/dev/full`` (every
write fails with ENOSPC), or a file size limit (``RLIMIT_FSIZE``: the write is cut short where
the room ends, then fails, as on a full disk).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import runtime.logs.sink as sink_module
from runtime.delivery import Pipeline
from runtime.logs import JsonLinesLogSink
from runtime.logs.events import json_lines
from runtime.settings import Settings
from runtime.tenants import TomlTenantDirectory
from tests.test_logs import CODE, DEV_FULL, in_thread, report, request

ROOT = Path(__file__).resolve().parents[2]
GENEROUS = 60.0  # seconds: a loaded 2-core CI machine; the expected time is about a second
HEADER = re.compile(
    rb"phone-actions: (\d+) log lines for (.+) could not be written \((.+)\); they follow, one "
    rb"JSON line each, to be appended to that file"
)
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full (Linux)")


def dumped(stderr: bytes, path: Path) -> tuple[list[bytes], list[bytes]]:
    """The explanatory lines on ``stderr`` naming ``path``, and the lines each announced: the
    ones right after it, as many as it says (each checked to be a whole JSON object)."""
    lines = stderr.split(b"\n")
    headers: list[bytes] = []
    found: list[bytes] = []
    for number, line in enumerate(lines):
        match = HEADER.fullmatch(line)
        if match is None or match[2] != os.fsencode(path):
            continue
        headers.append(line)
        count = int(match[1])
        announced = lines[number + 1 : number + 1 + count]
        assert len(announced) == count, "fewer lines follow than the header says"
        for each in announced:
            assert isinstance(json.loads(each), dict), each
        found += [each + b"\n" for each in announced]
    return headers, found


# -- in the process: /dev/full ------------------------------------------------------------------


@needs_dev_full
async def test_lines_a_full_device_still_refuses_at_close_go_to_stderr_once_each(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    """Reports written on every path (async, blocking, another thread's) while the device is
    full: close retries them for ``close_retry`` seconds, then writes them to stderr, whole, in
    order, scrubbed of the code, after one line naming the file, the count and the error."""
    sink = JsonLinesLogSink(DEV_FULL, report_interval=3600, close_retry=0.5)
    caller = request()
    reports = [report(error=f"code {CODE} rejected") for _ in range(5)]
    expected = [line for one in reports for line in json_lines(caller, one)]
    await asyncio.gather(*(sink.write(caller, one) for one in reports[:3]))
    sink.write_blocking(caller, reports[3])
    here = sink.pending(caller, reports[4])
    assert here is not None
    await in_thread(sink.write_here, here)
    failures = sink.failures
    capfdbinary.readouterr()

    started = time.monotonic()
    await sink.aclose()
    took = time.monotonic() - started
    assert 0.5 <= took < GENEROUS  # retried for the whole window, and no longer
    assert sink.failures >= failures + 2  # the last write, then retries

    headers, lines = dumped(capfdbinary.readouterr().err, DEV_FULL)
    assert len(headers) == 1
    assert b"10 log lines for /dev/full" in headers[0]
    assert b"(No space left on device (ENOSPC))" in headers[0]
    assert lines == expected  # each once, in order, byte for byte what the file would hold
    texts = re.sub(r"[0-9a-f]{32}", "", b"".join(lines).decode())  # ids hold the code by chance
    assert CODE not in texts
    assert sink.written_to_stderr == 10
    assert sink.dropped == 0  # on stderr: not dropped


async def test_lines_the_file_takes_during_the_close_retries_are_written_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    """Room comes back while close retries (another process freed space): the kept lines go to
    the file, in order, once, and nothing goes to stderr; close returns at once then, without
    waiting out its window."""
    path = tmp_path / "events.jsonl"
    sink = JsonLinesLogSink(path, report_interval=3600, close_retry=GENEROUS)
    write = os.write
    closing = False
    refused_at_close = 0

    def full_until_the_third_try_at_close(fd: int, data: bytes) -> int:
        nonlocal refused_at_close
        if fd != sink._fd or (closing and refused_at_close == 2):
            return write(fd, data)
        if closing:
            refused_at_close += 1
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full_until_the_third_try_at_close)
    caller = request()
    reports = [report() for _ in range(4)]
    expected = b"".join(line for one in reports for line in json_lines(caller, one))
    for one in reports:
        await sink.write(caller, one)
    assert sink.failures >= 1
    assert path.read_bytes() == b""
    capfdbinary.readouterr()

    closing = True
    started = time.monotonic()
    sink.close()
    assert time.monotonic() - started < GENEROUS
    assert refused_at_close == 2
    assert path.read_bytes() == expected
    assert dumped(capfdbinary.readouterr().err, path) == ([], [])
    assert sink.written_to_stderr == 0
    assert sink.dropped == 0


@needs_dev_full
def test_lines_stderr_refuses_too_are_dropped_and_counted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """stderr takes only part of the dump (a pipe nobody reads, full after 4 KiB): the lines it
    took whole are on stderr, the rest are dropped, counted and reported."""
    reader, writer = os.pipe()
    try:
        os.set_blocking(writer, False)
        fcntl.fcntl(writer, fcntl.F_SETPIPE_SZ, 4096)
        monkeypatch.setattr(sink_module, "_STDERR", writer)
        sink = JsonLinesLogSink(DEV_FULL, report_interval=3600, close_retry=0)
        for _ in range(20):  # about 11 KiB of lines
            sink.write_blocking(request(), report())
        with caplog.at_level(logging.ERROR, logger="runtime.logs"):
            sink.close()
        taken = os.read(reader, 1 << 16)
    finally:
        os.close(reader)
        os.close(writer)
    whole = taken.count(b"\n") - 1  # after the explanatory line
    assert 0 < whole < 20
    assert sink.written_to_stderr == whole
    assert sink.dropped == 20 - whole
    errors = [r.getMessage() for r in caplog.records if "dropped at close" in r.getMessage()]
    assert len(errors) == 1, errors
    assert f"{20 - whole} lines for /dev/full dropped at close" in errors[0]
    assert "(EAGAIN)" in errors[0]


# -- a real pipeline given SIGTERM on a full disk -------------------------------------------------

FULL = """
import asyncio, itertools, resource, signal, sys
from pathlib import Path
from runtime import PhoneMessageRequest
from runtime.delivery import Pipeline
from runtime.settings import Settings
from runtime.tenants import TomlTenantDirectory

data_dir, room = Path(sys.argv[1]), int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails (EFBIG), no kill
size = (data_dir / "events.jsonl").stat().st_size
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + room, hard))  # the disk's last free bytes

async def main():
    settings = Settings(_env_file=None, data_dir=data_dir, outbox_cap=100_000)
    tenants = TomlTenantDirectory.from_mapping(
        {"tenants": {"acme": {"provider": "outbox"}}}, environ={}
    )
    numbers = itertools.count()
    async with Pipeline.from_settings(settings, tenants=tenants, load_entrypoints=False) as p:
        p.handle_signals()
        print("ready", flush=True)

        async def lane():
            while not p.closing:
                number = next(numbers)  # every other one keyed: written by the store thread
                request = PhoneMessageRequest.create(
                    tenant="acme", recipient="+14155552671", code="123456",
                    idempotency_key=f"full-{number}" if number % 2 else None,
                )
                report = await p.deliver(request)
                print("report", report.id, report.status, flush=True)

        await asyncio.gather(*(lane() for _ in range(10)))
    print("closed", flush=True)

asyncio.run(main())
"""


def documented_recipe() -> str:
    """The awk program docs/operations.md gives for taking those lines out of the journal."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    found = re.search(r"awk -v file=\"\$log\" '(.+?)' stderr\.txt > lost\.jsonl", text, re.DOTALL)
    assert found is not None, "docs/operations.md lost its recipe"
    return found[1]


def test_sigterm_on_a_full_disk_loses_no_reported_event(tmp_path: Path) -> None:
    """The fault: the log file's disk is full (its last 5,000 bytes taken by the first lines),
    deliveries go on answering with their lines kept in memory, then SIGTERM. The process
    exits 0 after its bounded retries, and every report it printed has its event exactly once,
    in the file or on stderr; appended with the documented recipe, they are all in the file
    and the database copy stores each."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    path = data_dir / "events.jsonl"
    path.write_bytes(b"\n" * (4 << 20))  # earlier runs: the database stays far below the limit
    stderr_file = tmp_path / "stderr"
    with stderr_file.open("wb") as stderr:  # a file, like the journal: never a full pipe
        child = subprocess.Popen(
            [sys.executable, "-c", FULL, str(data_dir), "5000"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert child.stdout is not None
        try:
            assert child.stdout.readline().strip() == "ready"
            printed = [child.stdout.readline() for _ in range(50)]
            child.send_signal(signal.SIGTERM)
            rest = child.stdout.read()  # not communicate(): it would skip what readline() buffered
            assert child.wait(timeout=GENEROUS) == 0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    errors = stderr_file.read_bytes()
    lines = printed + rest.splitlines(keepends=True)
    assert lines[-1] == "closed\n", errors.decode()
    assert all(line.startswith("report ") for line in lines[:-1]), errors.decode()
    reported = [line.split()[1] for line in lines[:-1]]

    in_file: list[str] = []
    torn: list[bytes] = []
    for line in path.read_bytes().split(b"\n"):
        if line:
            try:
                in_file.append(json.loads(line)["details"]["delivery_id"])
            except ValueError:
                torn.append(line)  # where the room ran out mid-line
    assert len(torn) <= 1
    headers, lines_on_stderr = dumped(errors, path)
    on_stderr = [json.loads(line)["details"]["delivery_id"] for line in lines_on_stderr]
    assert len(headers) == 1, errors.decode()
    assert in_file, "the disk had room for the first lines"
    assert on_stderr, "the disk was full when SIGTERM came"
    assert Counter(in_file + on_stderr) == Counter(reported)  # each reported event, once
    assert b"(File too large (EFBIG))" in headers[0]
    assert b"dropped at close" not in errors

    if shutil.which("awk") is None:
        return
    # the operator, once there is room: end the cut line, then append what stderr holds
    lost = subprocess.run(
        ["awk", "-v", f"file={path}", documented_recipe(), str(stderr_file)],
        check=True,
        capture_output=True,
    ).stdout
    assert lost == b"".join(lines_on_stderr)
    with path.open("ab") as log_file:  # [ -z "$(tail -c1 "$log")" ] || echo >> "$log"
        log_file.write(lost if path.read_bytes().endswith(b"\n") else b"\n" + lost)
    ids = [
        json.loads(line)["details"]["delivery_id"]
        for line in path.read_bytes().split(b"\n")
        if line and line not in torn
    ]
    assert Counter(ids) == Counter(reported)

    async def copy() -> None:  # the database copy (GET /api/v2/logs, log streams) reads the file
        settings = Settings(_env_file=None, data_dir=data_dir)
        tenants = TomlTenantDirectory.from_mapping({"tenants": {}}, environ={})
        async with Pipeline.from_settings(settings, tenants=tenants, load_entrypoints=False) as p:
            assert p.stored_log is not None
            await p.stored_log.ingester.catch_up()

    asyncio.run(copy())
    with sqlite3.connect(data_dir / "phone-actions.sqlite3") as db:
        events = [json.loads(event) for (event,) in db.execute("SELECT event FROM log_events")]
    assert Counter(event["details"]["delivery_id"] for event in events) == Counter(reported)
