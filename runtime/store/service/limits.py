"""Auth0's documented limits on actions (docs/service.md, "Limits")."""

from __future__ import annotations

__all__ = [
    "MAX_ACTIONS",
    "MAX_BINDINGS",
    "MAX_CODE_BYTES",
    "MAX_DEPENDENCIES",
    "MAX_SECRETS",
    "MAX_SECRET_NAME",
    "MAX_SECRET_VALUE",
    "MAX_VERSIONS",
    "TRIGGERS",
]

MAX_CODE_BYTES = 100 * 1024  # of UTF-8
MAX_SECRETS = 30
MAX_SECRET_NAME = 128
MAX_SECRET_VALUE = 4096
MAX_VERSIONS = 50  # per action; the oldest undeployed ones are deleted beyond that
MAX_ACTIONS = 100  # per tenant
MAX_BINDINGS = 20  # per trigger
MAX_DEPENDENCIES = 10
TRIGGERS = ("send-phone-message", "custom-phone-provider")
"""The triggers this runtime runs (an action targets exactly one, as in Auth0)."""
