"""The declarations every provider makes, with the defaults of a provider that says nothing.

The pipeline reads these members of :class:`~runtime.providers.Provider` (through
:func:`~runtime.providers.reaches_phones`, :func:`~runtime.providers.enforces_timeout` and
:func:`~runtime.providers.accepts_observer`); a provider built on the kit inherits them and
overrides only what differs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ProviderBase"]


class ProviderBase:
    """Defaults for what a provider declares to the pipeline (docs/hooks.md)."""

    reaches_phones: bool = True
    """False for a sender that only stores messages: what it accepts is reported ``stored``."""
    enforces_timeout: bool = False
    """True when ``send`` keeps to ``message.timeout`` itself: the pipeline adds no timer."""
    accepts_observer: bool = False
    """True when ``send`` takes ``observer=`` and shows it every HTTP exchange."""

    def check(self, message: Any, config: Any, credentials: Any) -> None:
        """Raise the ``configuration_error`` that ``send`` would raise for ``message`` with
        these settings and credentials, without sending anything (``providers try`` asks
        before it sends). Nothing to check by default."""
