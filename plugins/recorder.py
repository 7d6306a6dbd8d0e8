"""The recorder: writes each attempt of a recording tenant to a recording (docs/testing.md).

A tenant records when its ``record`` field is true. The pipeline then captures, per attempt,
the trigger event or message, the HTTP exchanges and the outcome; this ``after_send`` observer
writes them, redacted, under ``recordings_dir`` (default ``data_dir/recordings``), one JSON
Lines file per tenant, day and process. The writing happens on the recorder's own thread
(:class:`~runtime.recording.recorder.RecordingFiles`): this observer only hands the captures
over, so the event loop never redacts; :func:`flush` waits for what was handed over.
"""

from __future__ import annotations

import atexit

from runtime import hookimpl
from runtime.events import DeliveryReport, PhoneMessageRequest
from runtime.recording.capture import take_delivery
from runtime.recording.recorder import RecordingFiles

__all__ = ["FILES", "after_send", "flush"]

FILES = RecordingFiles()


@hookimpl
def after_send(request: PhoneMessageRequest, report: DeliveryReport) -> None:
    captures = take_delivery()
    if captures:
        FILES.submit(report, captures)


def flush(timeout: float | None = 10.0) -> bool:
    """Wait until every delivery handed over so far is written (tests, shutdown)."""
    return FILES.flush(timeout)


atexit.register(flush, 5.0)
