"""Auth0's log stream filter categories, and which of this service's event types each holds.

A stream with filters receives the events of those categories only. Auth0's docs list the
categories (``auth.login.fail``, ``user.notification``...) but not where every ``gd_*`` code
falls; this mapping is this project's: sends and starts are notifications, failures and
refusals are failures, completions are successes. An event type not listed is ``other``.
"""

from __future__ import annotations

__all__ = ["CATEGORIES", "category_of", "types_of"]

_TYPES: dict[str, tuple[str, ...]] = {
    "user.notification": (
        "gd_send_sms",
        "gd_send_voice",
        "gd_start_enroll",
        "gd_start_auth",
    ),
    "user.fail": (
        "gd_send_sms_failure",
        "gd_send_voice_failure",
        "gd_auth_failed",
        "gd_otp_rate_limit_exceed",
        "limit_phone",
    ),
    "user.success": ("gd_enrollment_complete", "gd_auth_succeed"),
    "actions": ("actions_execution_failed",),
    "system.notification": ("fn", "wn"),
}
CATEGORIES: tuple[str, ...] = (
    "auth.login.fail",
    "auth.login.notification",
    "auth.login.success",
    "management.fail",
    "management.success",
    *_TYPES,
    "other",
)
_CATEGORY = {kind: category for category, kinds in _TYPES.items() for kind in kinds}


def category_of(kind: str) -> str:
    return _CATEGORY.get(kind, "other")


def types_of(categories: list[str]) -> frozenset[str] | None:
    """The event types a filter on ``categories`` lets through; None for no filter or one
    that includes ``other`` (every type not listed: the stream filters after reading)."""
    if not categories or "other" in categories:
        return None
    return frozenset(kind for category in categories for kind in _TYPES.get(category, ()))
