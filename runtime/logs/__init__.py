"""Log events with Auth0's codes (:mod:`.events`), appended as JSON Lines by a sink that hands
each report's lines to the OS before the report returns (:mod:`.sink`, :mod:`.files`).

One event per attempt: ``gd_send_sms`` / ``gd_send_voice`` when it delivered,
``gd_send_sms_failure`` / ``gd_send_voice_failure`` when it failed; a request rejected before
any attempt gets one failure event carrying the reason. The OTP code never appears: message
texts are not logged, and each line is scrubbed of the code as a last guard.
"""

from __future__ import annotations

from runtime.logs.events import _DESCRIPTIONS, CODE_MASK, json_lines, log_events, scrub
from runtime.logs.files import check_log_path
from runtime.logs.sink import JsonLinesLogSink

__all__ = [
    "CODE_MASK",
    "_DESCRIPTIONS",
    "JsonLinesLogSink",
    "check_log_path",
    "json_lines",
    "log_events",
    "scrub",
]
