"""The log events of a rate-limit refusal: Auth0's ``limit_phone``, and for a per-user rule
also ``gd_otp_rate_limit_exceed``, in place of the generic failure event.

``limit_phone``'s details are Auth0's (``delivery_method``, ``reset_time``, ``trigger_time``,
``type``, ``body``) plus the report's ``delivery_id``, ``status`` and ``failure_details``, so
a refusal in the log says which rule refused, for whom, and until when.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from runtime.events import DeliveryReport

__all__ = ["LIMIT_DESCRIPTIONS", "USER_RULES", "limit_events"]

LIMIT_DESCRIPTIONS = {
    "limit_phone": "Blocked Phone Delivery",
    "gd_otp_rate_limit_exceed": "Too many MFA failures",
}
USER_RULES = frozenset({"user_messages", "user_voice", "user_requests"})


def limit_events(report: DeliveryReport, failure: dict[str, Any]) -> list[dict[str, Any]]:
    """``failure`` (the generic event :func:`runtime.logs.events.log_events` made for the
    rejected report) turned into ``limit_phone``, then ``gd_otp_rate_limit_exceed`` when a
    per-user rule refused."""
    trigger = report.created_at
    reset = trigger + timedelta(seconds=report.retry_after or 0)
    details = dict(failure["details"])
    details.update(
        {
            "delivery_method": report.channel,
            "trigger_time": trigger,
            "reset_time": reset,
            "type": report.limit,
            "body": {"purpose": report.purpose, "recipient": report.recipient},
        }
    )
    limited = {
        **failure,
        "type": "limit_phone",
        "description": LIMIT_DESCRIPTIONS["limit_phone"],
        "details": details,
    }
    events = [limited]
    if report.limit in USER_RULES:
        stem = str(failure["log_id"])[:-2]
        events.append(
            {
                **limited,
                "type": "gd_otp_rate_limit_exceed",
                "description": LIMIT_DESCRIPTIONS["gd_otp_rate_limit_exceed"],
                "log_id": f"{stem}01",
            }
        )
    return events
