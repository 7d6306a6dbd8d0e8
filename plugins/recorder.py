"""The recorder: writes each attempt of a recording tenant to a recording (docs/testing.md).

A tenant records when its ``record`` field is true. The pipeline then captures, per attempt,
the trigger event or message, the HTTP exchanges and the outcome; this ``after_send`` observer
writes them, redacted, under ``recordings_dir`` (default ``data_dir/recordings``), one JSON
Lines file per tenant, day and process.
"""

from __future__ import annotations

from runtime import hookimpl
from runtime.events import DeliveryReport, PhoneMessageRequest
from runtime.recording.capture import take_delivery
from runtime.recording.recorder import RecordingFiles

__all__ = ["FILES", "after_send"]

FILES = RecordingFiles()


@hookimpl
def after_send(request: PhoneMessageRequest, report: DeliveryReport) -> None:
    captures = take_delivery()
    if captures:
        FILES.write(report, captures)
