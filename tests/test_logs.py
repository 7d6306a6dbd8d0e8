"""The JSON Lines log sink under real faults: a killed process, rotation, a full device, a folder.

What a user relies on: once a report is returned, its log events are in the file (handed to the
OS, not sitting in a buffer); a rotated or deleted file does not swallow later events; a write
that fails is reported and retried, never raised into the delivery, never silent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from runtime.errors import ConfigurationError
from runtime.events import Attempt, DeliveryReport, PhoneMessageRequest
from runtime.logs import CODE_MASK, JsonLinesLogSink, check_log_path
from runtime.logs.events import event_lines, json_lines
from runtime.logs.files import LOW_SPACE_BYTES, space_warning
from runtime.logs.ingest import LogIngester
from runtime.store import StoreExecutor
from runtime.templates import spell_code
from tests.conftest import PipelineFactory
from tests.test_delivery import request as delivery_request
from tests.test_delivery import tenant as delivery_tenant

ROOT = Path(__file__).resolve().parents[1]
CODE = "735194"
DEV_FULL = Path("/dev/full")


def request() -> PhoneMessageRequest:
    return PhoneMessageRequest.create(tenant="acme", recipient="+14155552671", code=CODE)


def report(error: str | None = None) -> DeliveryReport:
    """A delivered report; ``error`` adds a failed attempt before it (two lines)."""
    attempts = [Attempt(provider="outbox", outcome="delivered", latency_ms=1.5, message_id="m1")]
    if error is not None:
        failed = Attempt(provider="twilio", outcome="failed", latency_ms=2.0, error=error)
        attempts.insert(0, failed)
    return DeliveryReport(
        tenant="acme",
        recipient="+14155552671",
        channel="sms",
        purpose="verification",
        status="delivered",
        delivered_by="outbox",
        attempts=attempts,
    )


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` parsed: a torn or partial line fails the test."""
    return [json.loads(line) for line in path.read_bytes().decode().splitlines()]


def delivery_ids(path: Path) -> list[str]:
    return [event["details"]["delivery_id"] for event in read_events(path)]


# -- written before the report returns --------------------------------------------------------


async def test_a_returned_write_is_in_the_file_without_flush(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonLinesLogSink(path)
    one = report(error=f"code {CODE} rejected")
    await sink.write(request(), one)
    events = read_events(path)  # no flush, no close: the OS has the lines already
    assert [e["type"] for e in events] == ["gd_send_sms_failure", "gd_send_sms"]
    assert {e["details"]["delivery_id"] for e in events} == {one.id}
    assert CODE not in re.sub(r"[0-9a-f]{32}", "", path.read_text())  # ids hold it by chance
    assert CODE_MASK in events[0]["details"]["provider_error"]["message"]

    many = [report() for _ in range(50)]
    await asyncio.gather(*(sink.write(request(), r) for r in many))
    assert set(delivery_ids(path)) == {one.id, *(r.id for r in many)}
    sink.write_blocking(request(), last := report())
    assert delivery_ids(path)[-1] == last.id
    sink.close()
    sink.close()  # idempotent


def test_the_code_is_masked_in_texts_but_never_in_the_ids_that_tie_an_event_to_its_report() -> None:
    """A random hex id holds the code now and then (one delivery in about 600,000 for a
    six-digit code): masking it there lost that delivery's event to whoever looks it up."""
    one = report(error=f"code {CODE} rejected").model_copy(
        update={"id": f"cbff22a5f2f8166670140dcb{CODE}fe"}
    )
    caller = request().model_copy(
        update={"user": {"user_id": f"auth0|{CODE}"}, "recipient": f"+1415{CODE}1"}
    )
    events = [json.loads(line) for line in json_lines(caller, one)]
    assert [e["details"]["delivery_id"] for e in events] == [one.id, one.id]
    assert [e["log_id"][:30] for e in events] == [one.id[:30]] * 2
    assert {e["user_id"] for e in events} == {f"auth0|{CODE}"}
    assert events[0]["details"]["provider_error"]["message"] == f"code {CODE_MASK} rejected"
    # a message id may come from a tenant's action or a third-party plugin: masked, like texts
    sent = Attempt(provider="x", outcome="delivered", latency_ms=1.0, message_id=f"id-{CODE}")
    events = [
        json.loads(line) for line in json_lines(caller, one.model_copy(update={"attempts": [sent]}))
    ]
    assert events[0]["details"]["message_id"] == f"id-{CODE_MASK}"
    assert events[0]["details"]["delivery_id"] == one.id

    spoken = spell_code(CODE)
    said = report(error=f"said {spoken}").model_copy(update={"id": f"{CODE}" * 5 + "ab"})
    events = [json.loads(line) for line in json_lines(caller, said)]
    assert events[0]["details"]["provider_error"]["message"] == f"said {CODE_MASK}"
    assert events[0]["details"]["delivery_id"] == said.id
    wrong = event_lines([{"log_id": f"{CODE}ff", "details": {"note": f"tried {CODE}"}}], [CODE])
    assert json.loads(wrong[0]) == {
        "log_id": f"{CODE}ff",
        "details": {"note": f"tried {CODE_MASK}"},
    }


CHILD_REPORTS = """
request = PhoneMessageRequest.create(
    tenant="acme", recipient="+14155552671", code="735194"
)

def report():
    attempt = Attempt(provider="outbox", outcome="delivered", latency_ms=1.0, message_id="m")
    return DeliveryReport(tenant="acme", recipient="+14155552671", channel="sms",
                          purpose="verification", status="delivered", attempts=[attempt])
"""
"""The report every child script below writes: one delivered SMS."""


BURST = (
    """
import asyncio, sys
from pathlib import Path
from runtime.events import Attempt, DeliveryReport, PhoneMessageRequest
from runtime.logs import JsonLinesLogSink

mode, path = sys.argv[1], Path(sys.argv[2])
sink = JsonLinesLogSink(path)
"""
    + CHILD_REPORTS
    + """
def done(one):
    sys.stdout.write(one.id + "\\n")
    sys.stdout.flush()

async def writer():
    while True:
        one = report()
        await sink.write(request, one)
        done(one)

async def main():
    await asyncio.gather(*(writer() for _ in range(50)))

if mode == "async":
    asyncio.run(main())
while True:
    one = report()
    sink.write_blocking(request, one)
    done(one)
"""
)


@pytest.mark.parametrize("mode", ["blocking", "async"])
def test_sigkill_mid_burst_loses_no_returned_report(tmp_path: Path, mode: str) -> None:
    """The child writes reports without end and prints each id as its write returns; killed
    mid-burst, every id it printed has its line, and every line in the file parses."""
    path = tmp_path / "events.jsonl"
    child = subprocess.Popen(
        [sys.executable, "-c", BURST, mode, str(path)], cwd=ROOT, stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    printed: list[str] = []
    try:
        while len(printed) < 500:
            line = child.stdout.readline()
            assert line, f"the child stopped early (exit {child.poll()})"
            printed.append(line.decode().strip())
    finally:
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()  # ids printed before the kill, still in the pipe
        child.wait()
    assert child.returncode == -signal.SIGKILL
    printed += [line for line in rest.decode().split("\n")[:-1] if line]
    written = set(delivery_ids(path))
    missing = [one for one in printed if one not in written]
    assert not missing, f"{len(missing)} of {len(printed)} returned reports have no log line"


# -- cancelled callers and a stalled file -------------------------------------------------------


async def test_cancelled_caller_does_not_cancel_the_write_and_the_loop_keeps_running(
    tmp_path: Path,
) -> None:
    """A FIFO nobody reads stalls the writer thread in ``os.write``, like a hung disk: the event
    loop keeps serving, the caller can be cancelled, and the line still goes out afterwards."""
    path = tmp_path / "events.fifo"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    sink = JsonLinesLogSink(path)
    filler = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        while True:  # fill the pipe: the sink's next write blocks
            os.write(filler, b"\n" * 4096)
    except BlockingIOError:
        pass
    os.close(filler)
    one = report()
    task = asyncio.create_task(sink.write(request(), one))
    await asyncio.sleep(0)  # the task submits its lines and waits
    assert not task.done()
    assert task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    os.set_blocking(reader, True)
    received: list[bytes] = []
    drain = threading.Thread(
        target=lambda: received.extend(iter(lambda: os.read(reader, 1 << 16), b""))
    )
    closing = asyncio.create_task(sink.aclose())
    await asyncio.sleep(0)
    assert not closing.done()  # waits for the stalled write, off the event loop
    drain.start()
    await closing  # the drain lets the write through
    drain.join(timeout=60)  # generous: a loaded 2-core CI machine; it ends at EOF in practice
    os.close(reader)
    lines = [json.loads(line) for line in b"".join(received).splitlines() if line.strip()]
    assert [event["details"]["delivery_id"] for event in lines] == [one.id]


# -- rotation ---------------------------------------------------------------------------------


async def test_rotated_deleted_and_truncated_files_get_the_later_events(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonLinesLogSink(path)
    first, second, third, fourth, fifth = (report() for _ in range(5))

    await sink.write(request(), first)
    path.rename(tmp_path / "events.jsonl.1")  # logrotate "create": rename, then a new file
    path.touch()
    await sink.write(request(), second)
    assert delivery_ids(tmp_path / "events.jsonl.1") == [first.id]
    assert delivery_ids(path) == [second.id]

    path.rename(tmp_path / "events.jsonl.2")  # moved and nothing created: the sink creates it
    await sink.write(request(), third)
    assert delivery_ids(path) == [third.id]

    path.unlink()  # deleted
    await sink.write(request(), fourth)
    assert delivery_ids(path) == [fourth.id]

    os.truncate(path, 0)  # logrotate "copytruncate": appends start again at 0, no hole
    await sink.write(request(), fifth)
    assert delivery_ids(path) == [fifth.id]
    assert sink.failures == 0
    sink.close()


# -- failed writes ----------------------------------------------------------------------------


@pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full (Linux)")
async def test_full_device_is_reported_once_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = JsonLinesLogSink(DEV_FULL, report_interval=3600, close_retry=0)
    with caplog.at_level(logging.ERROR, logger="runtime.logs"):
        for _ in range(3):
            await sink.write(request(), report())  # returns, does not raise
        sink.write_blocking(request(), report())
    assert sink.failures >= 1
    assert sink.last_error is not None
    assert "No space left on device (ENOSPC)" in sink.last_error
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, errors  # the first failure, not one per event
    assert str(DEV_FULL) in errors[0]
    assert "No space left on device" in errors[0]
    sink.close()
    assert sink.written_to_stderr == 4  # still failing at close: on stderr (tests/logs/)
    assert sink.dropped == 0


@pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full (Linux)")
async def test_lines_kept_for_retry_are_bounded_and_drops_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = JsonLinesLogSink(DEV_FULL, max_pending_lines=2, report_interval=3600, close_retry=0)
    with caplog.at_level(logging.ERROR, logger="runtime.logs"):
        for _ in range(5):
            await sink.write(request(), report())
    assert sink.dropped == 3
    drops = [r.getMessage() for r in caplog.records if "already wait" in r.getMessage()]
    assert len(drops) == 1, drops  # reported once, counted every time
    assert "/dev/full" in drops[0]
    sink.close()
    assert sink.dropped == 3  # the two kept ones go to stderr at close, not dropped
    assert sink.written_to_stderr == 2


async def test_lines_of_a_failed_write_go_out_with_the_next_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonLinesLogSink(path)
    lost, kept, later = report(), report(), report()
    await sink.write(request(), lost)
    path.unlink()
    path.mkdir()  # the path became a folder
    with caplog.at_level(logging.ERROR, logger="runtime.logs"):
        await sink.write(request(), kept)
    assert sink.failures == 1
    assert sink.last_error == f"{path}: Is a directory (EISDIR)"
    assert any(str(path) in r.getMessage() for r in caplog.records)
    path.rmdir()
    with caplog.at_level(logging.WARNING, logger="runtime.logs"):
        await sink.write(request(), later)  # kept too: the file is retried once a second
        sink.flush()  # or now
    assert delivery_ids(path) == [kept.id, later.id]
    assert any("again" in r.getMessage() for r in caplog.records)
    assert sink.dropped == 0
    sink.close()


async def test_writes_after_close_return_and_are_counted(tmp_path: Path) -> None:
    sink = JsonLinesLogSink(tmp_path / "events.jsonl")
    sink.close()
    await sink.write(request(), report(error="busy"))
    sink.write_blocking(request(), report())
    assert sink.dropped == 3


# -- writes cut short ------------------------------------------------------------------------

CUT = (
    """
import json, resource, signal, sys
from pathlib import Path
from runtime.events import Attempt, DeliveryReport, PhoneMessageRequest
from runtime.logs import JsonLinesLogSink

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails (EFBIG), no kill
path = Path(sys.argv[1])
sink = JsonLinesLogSink(path)
"""
    + CHILD_REPORTS
    + """
def say(**state):
    state.update(failures=sink.failures, partial_lines=getattr(sink, "partial_lines", None))
    sys.stdout.write(json.dumps(state) + "\\n")
    sys.stdout.flush()

first, cut = report(), report()
sink.write_blocking(request, first)
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 40, hard))  # 40 bytes of one
sink.write_blocking(request, cut)  # cut short: 40 bytes of its line, then EFBIG
say(first=first.id, cut=cut.id)
sys.stdin.readline()  # the test goes on: another process writes, the file rotates, SIGKILL
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # room again
sink.flush()
say()
sink.close()
"""
)


class CutWriter:
    """A process whose log write is cut short for real: a file size limit (RLIMIT_FSIZE) lets
    40 bytes of a line into the file, then the write fails (EFBIG), as a full disk does."""

    def __init__(self, path: Path) -> None:
        self.child = subprocess.Popen(
            [sys.executable, "-c", CUT, str(path)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,  # its error records (a few lines: no pipe fills up)
        )
        self.errors = ""
        self.state = self._read()
        assert self.state["failures"] == 1, self.state
        assert not path.read_bytes().endswith(b"\n")  # part of a line: the cut for real

    def _read(self) -> dict[str, Any]:
        assert self.child.stdout is not None
        line = self.child.stdout.readline()
        assert line, f"the child stopped early (exit {self.child.wait()})"
        state: dict[str, Any] = json.loads(line)
        return state

    def resume(self) -> dict[str, Any]:
        """Room again: the child retries its kept line, then closes its sink and exits."""
        assert self.child.stdin is not None
        self.child.stdin.write(b"go\n")
        self.child.stdin.flush()
        state = self._read()
        self.errors = self.child.communicate()[1].decode()
        assert self.child.returncode == 0, self.errors
        return state

    def kill(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
        self.errors += self.child.communicate()[1].decode()


def split_lines(path: Path) -> tuple[list[str], list[bytes]]:
    """The delivery ids of the lines of ``path`` that parse, and the lines that do not (a last
    line without its ``\n`` among them)."""
    lines = path.read_bytes().split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    ids: list[str] = []
    torn: list[bytes] = []
    for line in lines:
        try:
            ids.append(json.loads(line)["details"]["delivery_id"])
        except ValueError:
            torn.append(line)
    return ids, torn


async def test_a_line_cut_short_is_written_again_whole_after_another_process_line(
    tmp_path: Path,
) -> None:
    """Two processes share the file; one's write is cut short, room comes back, the other's
    line lands next: the cut line is written again whole after it, never just its rest."""
    path = tmp_path / "events.jsonl"
    other = JsonLinesLogSink(path)  # the other node, appending to the same file
    await other.write(request(), before := report())
    cutter = CutWriter(path)
    try:
        await other.write(request(), glued := report())
        after = cutter.resume()
    finally:
        cutter.kill()
    other.close()
    ids, torn = split_lines(path)
    assert ids == [before.id, cutter.state["first"], cutter.state["cut"]]
    # The other node wrote without looking at the file's end (that would cost two syscalls
    # per write): its line is glued to the cut part, the one line that does not parse, and
    # the cutting node counted it.
    assert len(torn) == 1
    assert glued.id.encode() in torn[0]
    assert after["partial_lines"] == 1
    assert after["failures"] == 1
    assert other.partial_lines == 0
    assert "File too large (EFBIG)" in cutter.errors
    assert "The write was cut short" in cutter.errors


async def test_after_a_restart_the_first_line_starts_after_the_cut_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Cut short, then SIGKILL before room came back: the restarted process finds part of a
    line at the end, starts on a new line, and says so."""
    path = tmp_path / "events.jsonl"
    cutter = CutWriter(path)
    cutter.kill()
    sink = JsonLinesLogSink(path)
    with caplog.at_level(logging.ERROR, logger="runtime.logs"):
        await sink.write(request(), after := report())
    sink.close()
    ids, torn = split_lines(path)
    assert ids == [cutter.state["first"], after.id]
    assert len(torn) == 1  # the cut part, on a line of its own
    assert sink.partial_lines == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, errors
    assert str(path) in errors[0]
    assert "part of a line" in errors[0]


async def test_a_rotated_file_keeps_the_cut_part_and_the_new_one_gets_the_whole_line(
    tmp_path: Path,
) -> None:
    """The full file is moved away to make room: the new file starts with the whole line,
    not with the rest of the one cut in the old file."""
    path = tmp_path / "events.jsonl"
    cutter = CutWriter(path)
    try:
        path.rename(tmp_path / "events.jsonl.1")
        after = cutter.resume()
    finally:
        cutter.kill()
    ids, torn = split_lines(tmp_path / "events.jsonl.1")
    assert ids == [cutter.state["first"]]
    assert len(torn) == 1
    assert not (tmp_path / "events.jsonl.1").read_bytes().endswith(b"\n")
    assert split_lines(path) == ([cutter.state["cut"]], [])
    assert after["partial_lines"] == 1


async def test_a_short_write_followed_by_one_that_succeeds_never_writes_the_rest_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file takes 40 bytes of a write (room ran out), another process's line lands, then
    room is back: the sink does not append the rest of its line after that line, it writes
    the whole line again, on a line of its own."""
    path = tmp_path / "events.jsonl"
    sink = JsonLinesLogSink(path)
    await sink.write(request(), first := report())
    fd = sink._fd
    other = os.open(path, os.O_WRONLY | os.O_APPEND)
    write = os.write
    short = [True]

    def once_short(to: int, data: bytes) -> int:
        if to != fd or not short:
            return write(to, data)
        short.clear()
        count = write(to, data[:40])  # the file takes only part of the write
        write(other, b'{"another":"process"}\n')  # whose line lands right after it
        return count

    monkeypatch.setattr(os, "write", once_short)
    await sink.write(request(), cut := report())
    monkeypatch.undo()
    os.close(other)
    ids, torn = split_lines(path)
    assert ids == [first.id, cut.id]
    assert len(torn) == 1  # the 40 bytes, with the other line glued to them
    assert torn[0].endswith(b'{"another":"process"}')
    assert sink.partial_lines == 1
    assert sink.failures == 0
    sink.close()


async def test_a_file_ending_in_part_of_a_line_gets_a_newline_at_open_and_at_reopen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The file's last byte is read once per (re)open, not per write; a file that does not
    end a line gets ``\n`` before the next one."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"type":"gd_send_sms","descr')  # an earlier run's line, cut short
    reads: list[int] = []
    pread = os.pread

    def counted(fd: int, length: int, offset: int) -> bytes:
        reads.append(offset)
        return pread(fd, length, offset)

    monkeypatch.setattr(os, "pread", counted)
    sink = JsonLinesLogSink(path, report_interval=3600)
    first, second, third = report(), report(), report()
    with caplog.at_level(logging.ERROR, logger="runtime.logs"):
        await sink.write(request(), first)
        await sink.write(request(), second)
        assert split_lines(path) == ([first.id, second.id], [b'{"type":"gd_send_sms","descr'])
        assert len(reads) == 1  # at open only

        path.rename(tmp_path / "events.jsonl.1")
        path.write_bytes(b"{")  # the new file, begun by another process that was cut short
        await sink.write(request(), third)
    assert split_lines(path) == ([third.id], [b"{"])
    assert len(reads) == 2  # at the reopen
    assert sink.partial_lines == 2
    assert sink.failures == 0
    assert any("part of a line" in r.getMessage() for r in caplog.records)
    sink.close()


# -- lines written by another thread (the store thread, for keyed deliveries) --------------


async def in_thread(fn: Any, *args: Any) -> None:
    """``fn(*args)`` on a thread of its own, as the pipeline's store thread runs it."""
    done = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()

    def run() -> None:
        fn(*args)
        loop.call_soon_threadsafe(done.set_result, None)

    threading.Thread(target=run).start()
    await done


async def test_lines_another_thread_wrote_are_written_once(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonLinesLogSink(path)
    here = sink.pending(request(), report(error="busy"))
    assert here is not None
    await in_thread(sink.write_here, here)
    # in the file on return, without flush or close
    assert len(read_events(path)) == 2
    await sink.write_pending(here)  # the other side finds them taken: nothing twice
    queued = sink.pending(request(), report())
    assert queued is not None
    await sink.write_pending(queued)  # nobody took these: the writer thread writes them
    await in_thread(sink.write_here, queued)  # too late: already written
    assert len(read_events(path)) == 3
    sink.close()


async def test_lines_of_several_reports_another_thread_writes_go_in_one_write(
    tmp_path: Path,
) -> None:
    """The store thread completing a batch of keys writes their lines together, skipping
    the ones the event loop already took."""
    path = tmp_path / "events.jsonl"
    sink = JsonLinesLogSink(path)
    first, taken, last = (sink.pending(request(), report()) for _ in range(3))
    assert first is not None
    assert taken is not None
    assert last is not None
    await sink.write_pending(taken)
    await in_thread(sink.write_here, first, taken, last)
    assert len(read_events(path)) == 3
    sink.close()


async def test_waiting_for_another_threads_write_lasts_until_it_is_over(tmp_path: Path) -> None:
    """The store thread took the lines and is still writing (a stalled disk: here, the write
    lock held): the event loop's side returns only after that write, never before."""
    sink = JsonLinesLogSink(tmp_path / "events.jsonl")
    lines = sink.pending(request(), report())
    assert lines is not None
    with sink._write_lock:  # the taker is inside its write
        assert lines.take()
        waiting = asyncio.ensure_future(sink.write_pending(lines))
        done, _ = await asyncio.wait({waiting}, timeout=0.2)
        assert not done
    await waiting
    sink.close()


async def test_lines_another_thread_writes_after_close_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonLinesLogSink(path)
    lines = sink.pending(request(), report(error="busy"))
    assert lines is not None
    sink.close()
    await in_thread(sink.write_here, lines)
    assert sink.dropped == 2
    assert path.read_bytes() == b""


@pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full (Linux)")
async def test_lines_another_thread_failed_to_write_are_kept_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed write on the store thread is reported like the writer thread's own, and its
    lines are kept for the next attempt (here still failing: written to stderr at close)."""
    sink = JsonLinesLogSink(DEV_FULL, report_interval=3600, close_retry=0)
    lines = sink.pending(request(), report())
    assert lines is not None
    with caplog.at_level(logging.ERROR, logger="runtime.logs"):
        await in_thread(sink.write_here, lines)
        await sink.write(request(), report())
    assert sink.failures >= 1
    assert "No space left on device (ENOSPC)" in (sink.last_error or "")
    sink.close()
    assert sink.written_to_stderr == 2
    assert sink.dropped == 0


# -- bad paths --------------------------------------------------------------------------------


def test_a_folder_or_unwritable_path_is_one_configuration_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PHONE_ACTIONS_LOG_FILE") as folder:
        JsonLinesLogSink(tmp_path)
    assert f"log file {tmp_path} is a folder" in str(folder.value)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError, match="PHONE_ACTIONS_DATA_DIR") as below:
        JsonLinesLogSink(blocker / "events.jsonl")
    assert str(blocker / "events.jsonl") in str(below.value)
    assert "\n" not in str(folder.value) + str(below.value)


def test_check_log_path_for_doctor(tmp_path: Path) -> None:
    ok, detail = check_log_path(tmp_path / "new" / "events.jsonl")
    assert ok, detail
    assert (tmp_path / "new").is_dir()
    assert check_log_path(tmp_path) == (
        False,
        f"{tmp_path} is a folder; set PHONE_ACTIONS_LOG_FILE (default: <data_dir>/events.jsonl, "
        "PHONE_ACTIONS_DATA_DIR) to a file",
    )
    blocker = tmp_path / "file"
    blocker.write_text("")
    ok, detail = check_log_path(blocker / "events.jsonl")
    assert not ok
    assert "(EEXIST)" in detail or "(ENOTDIR)" in detail
    assert space_warning(LOW_SPACE_BYTES - 1, 10**12) is not None
    assert space_warning(5 * 10**9, 10**12) is not None  # 0.5% of the device
    assert space_warning(50 * 10**9, 10**12) is None


def test_doctor_shows_the_log_file_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text('[tenants.acme]\nprovider = "outbox"\n')
    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(tenants))
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHONE_ACTIONS_LOG_FILE", str(tmp_path))
    from runtime.cli import app

    result = CliRunner().invoke(app, ["doctor"], terminal_width=200)
    assert result.exit_code == 1
    assert "log file" in result.output
    assert "is a folder" in result.output


async def test_a_file_rotated_while_the_copy_was_away_is_finished_first(
    make_pipeline: PipelineFactory,
) -> None:
    """Two events were written and not copied yet when the process went away; the file was
    then rotated. The next copy finds the stored file beside the path by its device and inode
    and reads it to its end before the new file: no event of the stored log is skipped."""
    pipeline = make_pipeline(delivery_tenant())
    assert pipeline.stored_log is not None
    for _ in range(3):
        await pipeline.deliver(delivery_request())
    assert await pipeline.stored_log.ingester.catch_up() == 3
    later = [await pipeline.deliver(delivery_request()) for _ in range(2)]  # not copied yet
    path = pipeline.settings.resolved_log_file
    path.rename(path.with_name(path.name + ".1"))  # rotated while the copy was away
    newest = await pipeline.deliver(delivery_request())
    executor = StoreExecutor(max_workers=1)
    restarted = LogIngester(
        path,
        pipeline.stored_log.log_repository,
        executor,
        timeout=5,
        poll_interval=1,
        retention_days=30,
    )
    try:
        assert await restarted.catch_up() == 3
    finally:
        await restarted.aclose()
        executor.shutdown()
    assert delivery_ids(path.with_name(path.name + ".1"))[-2:] == [done.id for done in later]
    assert delivery_ids(path) == [newest.id]


async def test_a_file_rotated_twice_while_the_copy_was_behind_is_not_skipped(
    make_pipeline: PipelineFactory,
) -> None:
    """The copy is behind (the database was down) while logrotate turns the file twice: at the
    end of the file it has open, it reads the rotated file written after it, then the path's."""
    pipeline = make_pipeline(delivery_tenant())
    assert pipeline.stored_log is not None
    ingester = pipeline.stored_log.ingester
    path = pipeline.settings.resolved_log_file
    for _ in range(2):
        await pipeline.deliver(delivery_request())
    assert await ingester.catch_up() == 2  # the copy has the first file open

    def rotate() -> None:  # logrotate's numbering: .1 becomes .2, the file becomes .1
        first = path.with_name(path.name + ".1")
        if first.exists():
            first.rename(path.with_name(path.name + ".2"))
        path.rename(first)

    await pipeline.deliver(delivery_request())
    rotate()
    for _ in range(2):
        await pipeline.deliver(delivery_request())
    rotate()
    await pipeline.deliver(delivery_request())
    assert await ingester.catch_up() == 4  # 1 + 2 + 1: no file skipped
    assert await ingester.catch_up() == 0


async def test_only_rotated_regular_files_beside_the_log_are_read(
    make_pipeline: PipelineFactory,
) -> None:
    """A folder, a FIFO and a thousand other files beside the log: the copy reads the rotated
    file written after the one it finished, never blocks on the FIFO, never stops at the
    folder, and finds the file past the thousand others."""
    pipeline = make_pipeline(delivery_tenant())
    assert pipeline.stored_log is not None
    ingester = pipeline.stored_log.ingester
    path = pipeline.settings.resolved_log_file
    for number in range(1000):  # sorted before the log's name
        path.with_name(f"a-{number:04}").touch()
    await pipeline.deliver(delivery_request())
    assert await ingester.catch_up() == 1
    await pipeline.deliver(delivery_request())
    path.rename(path.with_name(path.name + ".1"))
    await pipeline.deliver(delivery_request())
    path.rename(path.with_name(path.name + ".2"))
    path.with_name(path.name + ".d").mkdir()  # newer than every write: a candidate by age
    os.mkfifo(path.with_name(path.name + ".pipe"))
    await pipeline.deliver(delivery_request())
    assert await ingester.catch_up() == 3  # .1's second event, .2's, the path's
