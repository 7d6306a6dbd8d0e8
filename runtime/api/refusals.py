"""The HTTP answer of a policy refusal (docs/abuse_protection.md): one table for
``POST /api/v2/phone/messages`` and the Verify API, so a refusal means the same status on both.

A rate limit is 429 and a Redis that could not be asked 503, each with ``Retry-After``; a
country or number-type rule is 403 (waiting does not help, so no ``Retry-After``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

__all__ = ["POLICY_STATUS", "retry_after_header"]

POLICY_STATUS = {
    "rate_limited": 429,
    "limits_unavailable": 503,
    "country_blocked": 403,
    "number_type_blocked": 403,
}
"""A ``rejected`` report's reason → its HTTP status; the other reasons keep their own."""


def retry_after_header(report: dict[str, Any], *, now: datetime | None = None) -> dict[str, str]:
    """``Retry-After`` (whole seconds, at least 1) from the report's ``retry_after``; for a
    replayed report, what is left of it since the report was made. Empty when it has none."""
    seconds = report.get("retry_after")
    if seconds is None:
        return {}
    left = float(seconds)
    made = report.get("created_at")
    if report.get("replayed") and made is not None:
        created = made if isinstance(made, datetime) else datetime.fromisoformat(str(made))
        left -= ((now or datetime.now(UTC)) - created).total_seconds()
    return {"Retry-After": str(max(1, math.ceil(left)))}
