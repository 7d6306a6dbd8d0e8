"""Auth0's log stream filter categories, and which event types each holds.

A stream with filters receives the events of those categories only. The names are those of
the Management API's ``LogStreamFilterGroupNameEnum`` (the SDKs' ``LogStreamFilterName``,
which also lists ``auth.ancillary.fail``/``.success``). The event codes of each category are
those of Auth0's event-filters tables
(https://auth0.com/docs/customize/log-streams/event-filters; source
``auth0/docs-v2:main/docs/customize/log-streams/event-filters.mdx``, commit 093557e7),
copied whole so that a code this service starts writing later falls where Auth0 files it.
A code those tables list nowhere is ``other``: of this service's codes, ``gd_send_sms``,
``gd_send_voice`` and their ``_failure``, ``gd_start_auth``, ``gd_auth_succeed``,
``gd_auth_failed``, ``gd_otp_rate_limit_exceed``, ``limit_phone`` and ``wn``. A category
with no table (``management.fail``, ``auth.ancillary.*``) matches nothing.
"""

from __future__ import annotations

__all__ = ["CATEGORIES", "category_of", "types_of"]

_TYPES: dict[str, tuple[str, ...]] = {
    "actions": ("actions_execution_failed",),
    "auth.login.fail": ("f", "fc", "fco", "fcoa", "fens", "fp", "fu"),
    "auth.login.notification": ("w",),
    "auth.login.success": ("s", "scoa", "sens"),
    "auth.logout.fail": ("flo", "oidc_backchannel_logout_failed"),
    "auth.logout.success": ("oidc_backchannel_logout_succeeded", "slo"),
    "auth.signup.fail": ("fs",),
    "auth.signup.success": ("ss",),
    "auth.silent_auth.fail": ("fsa",),
    "auth.silent_auth.success": ("ssa",),
    "auth.token_exchange.fail": (
        "feacft",
        "feccft",
        "fede",
        "feoobft",
        "feotpft",
        "fepft",
        "fepotpft",
        "fercft",
        "ferrt",
        "fertft",
    ),
    "auth.token_exchange.success": (
        "seacft",
        "seccft",
        "sede",
        "seoobft",
        "seotpft",
        "sepft",
        "sercft",
        "sertft",
    ),
    "management.success": ("sapi", "mgmt_api_read"),
    "system.notification": (
        "admin_update_launch",
        "api_limit",
        "coff",
        "con",
        "depnote",
        "fcpro",
        "fui",
        "limit_delegation",
        "limit_mu",
        "limit_wc",
        "sys_os_update_start",
        "sys_os_update_end",
        "sys_update_start",
        "sys_update_end",
    ),
    "user.fail": (
        "fce",
        "fcp",
        "fcpn",
        "fcpr",
        "fcu",
        "fd",
        "fdeaz",
        "fdecc",
        "fdu",
        "fn",
        "fv",
        "fvr",
        "ss_sso_failure",
    ),
    "user.notification": (
        "cs",
        "gd_enrollment_complete",
        "gd_start_enroll",
        "gd_unenroll",
        "gd_update_device_account",
        "ss_sso_info",
        "ublkdu",
    ),
    "user.success": (
        "sce",
        "scp",
        "scpn",
        "scpr",
        "scu",
        "sdu",
        "srrt",
        "ss_sso_success",
        "sui",
        "sv",
        "svr",
    ),
    "scim.event": ("sscim", "fscim"),
}
_EMPTY = ("auth.ancillary.fail", "auth.ancillary.success", "management.fail")  # no table
CATEGORIES: tuple[str, ...] = (*sorted((*_TYPES, *_EMPTY)), "other")
_CATEGORY = {kind: category for category, kinds in _TYPES.items() for kind in kinds}


def category_of(kind: str) -> str:
    return _CATEGORY.get(kind, "other")


def types_of(categories: list[str]) -> frozenset[str] | None:
    """The event types a filter on ``categories`` lets through; None for no filter or one
    that includes ``other`` (every type not listed: the stream filters after reading)."""
    if not categories or "other" in categories:
        return None
    return frozenset(kind for category in categories for kind in _TYPES.get(category, ()))
