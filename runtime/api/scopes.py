"""The scopes a token may carry: Auth0's names, plus this project's own ``create:phone_messages``.

Kept free of FastAPI so that ``phone-actions token create`` can check scopes cheaply.
"""

from __future__ import annotations

__all__ = ["AUTH0_SCOPES", "OWN_SCOPES", "SCOPES", "unknown_scopes"]

AUTH0_SCOPES: dict[str, str] = {
    "read:actions": "List and read actions, versions, triggers and bindings.",
    "create:actions": "Create, deploy, roll back and test actions.",
    "update:actions": "Change actions and trigger bindings.",
    "delete:actions": "Delete actions.",
    "read:guardian_factors": "Read the phone factor: message types, provider, templates, "
    "fallback policy and default country (GET /api/v2/phone/settings).",
    "update:guardian_factors": "Change the phone factor: message types, provider, templates, "
    "fallback policy and default country (PATCH /api/v2/phone/settings).",
    "create:phone_providers": "Configure the phone provider and send a test message with it.",
    "read:phone_providers": "Read the phone provider (never its credentials).",
    "update:phone_providers": "Change the phone provider.",
    "delete:phone_providers": "Remove the phone provider.",
    "create:phone_templates": "Create phone templates and send a test message with one.",
    "read:phone_templates": "Read phone templates.",
    "update:phone_templates": "Change or reset phone templates.",
    "delete:phone_templates": "Delete phone templates.",
    "read:attack_protection": "Read the phone limits and geo rules "
    "(GET /api/v2/attack-protection/phone-limits).",
    "update:attack_protection": "Change the phone limits and geo rules "
    "(PATCH /api/v2/attack-protection/phone-limits).",
    "read:logs": "Search and read the stored log events (GET /api/v2/logs).",
    "create:log_streams": "Create log streams (POST /api/v2/log-streams).",
    "read:log_streams": "Read log streams (never their httpAuthorization).",
    "update:log_streams": "Change, pause and resume log streams.",
    "delete:log_streams": "Delete log streams.",
}
"""Auth0 Management API scopes this service checks, with what each allows."""

OWN_SCOPES: dict[str, str] = {
    "create:phone_messages": "Send a one-time code (POST /api/v2/phone/messages); "
    "this project's own scope, not Auth0's.",
    "read:phone_messages": "Read what the outbox default sender holds, codes masked, and the "
    "evaluation cap used (GET /api/v2/phone/outbox); this project's own scope.",
    "create:phone_enrollments": "Enroll a user's phone and confirm it with its code "
    "(POST /api/v2/phone/enrollments...); this project's own scope.",
    "create:phone_challenges": "Send a code to a user's enrolled phone and verify it "
    "(POST /api/v2/phone/challenges...); this project's own scope.",
    "create:usage_triggers": "Create usage triggers (POST /api/v2/usage-triggers); "
    "this project's own scope.",
    "read:usage_triggers": "List and read usage triggers; this project's own scope.",
    "delete:usage_triggers": "Delete usage triggers; this project's own scope.",
}

SCOPES: dict[str, str] = {**AUTH0_SCOPES, **OWN_SCOPES}
"""Every scope a token of this service may carry."""


def unknown_scopes(scopes: list[str]) -> list[str]:
    """The entries of ``scopes`` this service does not know (in their order)."""
    return [scope for scope in scopes if scope not in SCOPES]
