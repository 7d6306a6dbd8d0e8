"""Vonage provider plugin: one-time codes by SMS (the SMS API) and by voice (the Voice API).

One registered provider, ``vonage``, carries both channels (docs/providers/vonage.md):

- SMS: a form-urlencoded ``POST {sms_base_url}/json`` authenticated by ``api_key`` and
  ``api_secret`` in the body; Vonage always answers HTTP 200 and says yes or no in
  ``messages[0].status`` (:mod:`plugins.vonage.sms`);
- voice: a JSON ``POST {voice_base_url}`` with an inline NCCO ``talk`` action, authenticated
  by a short-lived RS256 JWT signed with the Vonage application's private key
  (:mod:`plugins.vonage.voice`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from plugins.vonage.provider import VonageConfig, VonageCredentials, VonageProvider
from runtime import hookimpl

if TYPE_CHECKING:
    from runtime.providers import Provider
    from runtime.settings import Settings

__all__ = ["VonageConfig", "VonageCredentials", "VonageProvider", "register_providers"]


@hookimpl
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register the Vonage provider; its session opens on first use."""
    provider = VonageProvider()
    provider.public_base_url = getattr(settings, "public_base_url", None)  # runtime/receipts
    register(provider)
