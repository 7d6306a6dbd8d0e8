"""Twilio provider plugin: one-time codes by SMS and voice through the official SDK."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from plugins.twilio.provider import TwilioConfig, TwilioCredentials, TwilioProvider
from runtime import hookimpl

if TYPE_CHECKING:
    from runtime.providers import Provider
    from runtime.settings import Settings

__all__ = ["TwilioConfig", "TwilioCredentials", "TwilioProvider", "register_providers"]


@hookimpl
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register one Twilio provider; its sessions are opened on first use."""
    register(TwilioProvider(public_base_url=getattr(settings, "public_base_url", None)))
