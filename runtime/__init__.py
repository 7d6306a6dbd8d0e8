"""phone-actions: delivers one-time codes by SMS and voice.

The public API for plugin authors and library callers (docs/writing_plugins.md lists it).
Plugins write ``from runtime import hookimpl``.

Names are imported on first use (PEP 562): ``import runtime.cli`` for ``phone-actions --help``
and the pytest plugin must not pay for pydantic, SQLAlchemy or aiohttp. Type checkers see the
imports below; ``runtime/py.typed`` tells them to trust these annotations.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.errors import (
        ConfigurationError,
        InvalidInputError,
        MissingCredentialsError,
        PhoneActionsError,
        PluginError,
        ProviderError,
        StoreUnavailableError,
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
    "StoreUnavailableError",
    "UnknownProviderError",
    "UnknownTenantError",
    "hookimpl",
    "hookspec",
    "parse_event",
]

_HOME = {
    "Attempt": "runtime.events",
    "ConfigurationError": "runtime.errors",
    "CustomPhoneProviderEvent": "runtime.events",
    "DeliveryReport": "runtime.events",
    "InvalidInputError": "runtime.errors",
    "MissingCredentialsError": "runtime.errors",
    "PhoneActionsError": "runtime.errors",
    "PhoneMessage": "runtime.providers",
    "PhoneMessageRequest": "runtime.events",
    "PluginError": "runtime.errors",
    "Provider": "runtime.providers",
    "ProviderError": "runtime.errors",
    "Receipt": "runtime.providers",
    "SendPhoneMessageEvent": "runtime.events",
    "StoreUnavailableError": "runtime.errors",
    "UnknownProviderError": "runtime.errors",
    "UnknownTenantError": "runtime.errors",
    "hookimpl": "runtime.hookspecs",
    "hookspec": "runtime.hookspecs",
    "parse_event": "runtime.events",
}
"""Where each public name lives; :func:`__getattr__` imports it from there on first use."""


if not TYPE_CHECKING:  # hidden from type checkers: `from runtime import Typo` stays an error

    def __getattr__(name: str) -> Any:
        home = _HOME.get(name)
        if home is None:
            raise AttributeError(f"module 'runtime' has no attribute {name!r}")
        value = getattr(import_module(home), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
