"""The recorder: writes each attempt of a recording tenant to a recording (docs/testing.md).

A tenant records when its ``record`` field is true. This plugin wraps every attempt
(``around_attempt``): for a recording tenant it gives the attempt an
:class:`~runtime.recording.capture.AttemptCapture` as its observer (the trigger event or
message, the HTTP exchanges) and, once the delivery's report is known, hands the delivery's
captures with it to :class:`~runtime.recording.recorder.RecordingFiles`, which writes them,
redacted, under ``recordings_dir`` (default ``data_dir/recordings``), one JSON Lines file per
tenant, day and process, on its own thread: the event loop never redacts. For other tenants
the wrapper only yields. :func:`flush` waits for what was handed over.
"""

from __future__ import annotations

import atexit
from functools import partial
from typing import TYPE_CHECKING

from runtime import hookimpl
from runtime.attempt_hooks import only_for
from runtime.recording.capture import AttemptCapture
from runtime.recording.recorder import RecordingFiles

if TYPE_CHECKING:
    from runtime.attempt_hooks import AttemptContext, AttemptWrapper
    from runtime.events import DeliveryReport

__all__ = ["FILES", "around_attempt", "flush"]

FILES = RecordingFiles()


@hookimpl(wrapper=True)
@only_for(lambda tenant: tenant.record)  # skipped for the others (runtime/attempt_hooks.py)
def around_attempt(attempt: AttemptContext) -> AttemptWrapper:
    if not attempt.tenant.record:
        return (yield)
    capture = AttemptCapture(
        provider=attempt.provider.name,
        message=attempt.message,
        provider_settings=attempt.provider_settings,
        credentials=attempt.credentials(),
        keep=tuple(attempt.tenant.record_keep),
        directory=attempt.settings.resolved_recordings_dir,
    )
    attempt.observer = capture
    captures: list[AttemptCapture] | None = attempt.delivery.data.get(__name__)
    if captures is None:  # the delivery's first recorded attempt
        captures = attempt.delivery.data[__name__] = []
        attempt.delivery.on_report(partial(_submit, captures))
    captures.append(capture)
    return (yield)


def _submit(captures: list[AttemptCapture], report: DeliveryReport) -> None:
    FILES.submit(report, captures)


def flush(timeout: float | None = 10.0) -> bool:
    """Wait until every delivery handed over so far is written (tests, shutdown)."""
    return FILES.flush(timeout)


atexit.register(flush, 5.0)
