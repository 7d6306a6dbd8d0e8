"""serve's log lines: written by a thread of their own in batches, never blocking the caller,
in order, and all of them out once stopped."""

from __future__ import annotations

import io
import logging
import threading

from runtime.stderr_log import BatchedStderr, configure


class _Recording(logging.Handler):
    """Keeps each record's message; ``gate`` (when given) holds every write until set, as a
    full stderr pipe would; ``seen`` is set at the first write."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.gate = gate
        self.seen = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.gate is not None:
            self.gate.wait()
        self.messages.append(record.getMessage())
        self.seen.set()


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, message, None, None)


def test_a_line_is_written_without_waiting_for_stop() -> None:
    target = _Recording()
    batched = BatchedStderr(target, linger=0.001)
    try:
        batched.handle(_record("one"))
        assert target.seen.wait(30)
        assert target.messages == ["one"]
    finally:
        batched.stop()


def test_a_blocked_stderr_never_blocks_the_caller_and_stop_writes_every_line() -> None:
    gate = threading.Event()
    target = _Recording(gate)
    batched = BatchedStderr(target, linger=0.001)
    for n in range(2_000):  # each returns at once although nothing can be written
        batched.handle(_record(f"line {n}"))
    assert target.messages == []
    gate.set()
    batched.stop()
    assert target.messages == [f"line {n}" for n in range(2_000)]


def test_lines_from_many_threads_are_all_written_each_thread_in_order() -> None:
    target = _Recording()
    batched = BatchedStderr(target)

    def log(name: str) -> None:
        for n in range(500):
            batched.handle(_record(f"{name} {n}"))

    threads = [threading.Thread(target=log, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batched.stop()
    assert len(target.messages) == 2_000
    for i in range(4):
        mine = [m for m in target.messages if m.startswith(f"t{i} ")]
        assert mine == [f"t{i} {n}" for n in range(500)]


def test_after_flush_lines_go_straight_to_the_stream_with_the_request_filter() -> None:
    class Tag(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.tag = "req-1"
            return True

    stream = io.StringIO()
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        flush = configure(logging.INFO, "%(tag)s %(message)s", Tag(), stream)
        logging.getLogger("runtime.test").info("queued")
        flush()
        assert stream.getvalue() == "req-1 queued\n"
        logging.getLogger("runtime.test").info("direct")
        assert stream.getvalue() == "req-1 queued\nreq-1 direct\n"
        flush()  # once is enough; again is harmless
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)
