"""phone-actions: delivers one-time codes by SMS and voice.

The public API for plugin authors and library callers. Plugins write
``from runtime import hookimpl``.
"""

from runtime.errors import (
    ConfigurationError,
    InvalidInputError,
    MissingCredentialsError,
    PhoneActionsError,
    PluginError,
    ProviderError,
    UnknownProviderError,
    UnknownTenantError,
)
from runtime.events import (
    Attempt,
    CustomPhoneProviderEvent,
    DeliveryReport,
    PhoneMessageRequest,
    SendPhoneMessageEvent,
    parse_event,
)
from runtime.hookspecs import hookimpl, hookspec
from runtime.providers import PhoneMessage, Provider, Receipt

__all__ = [
    "Attempt",
    "ConfigurationError",
    "CustomPhoneProviderEvent",
    "DeliveryReport",
    "InvalidInputError",
    "MissingCredentialsError",
    "PhoneActionsError",
    "PhoneMessage",
    "PhoneMessageRequest",
    "PluginError",
    "Provider",
    "ProviderError",
    "Receipt",
    "SendPhoneMessageEvent",
    "UnknownProviderError",
    "UnknownTenantError",
    "hookimpl",
    "hookspec",
    "parse_event",
]
