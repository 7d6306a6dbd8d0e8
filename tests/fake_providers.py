"""Throwaway provider plugins for pipeline tests: each does exactly what the test scripts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from runtime import PhoneMessage, Receipt, hookimpl
from runtime.events import Channel
from runtime.provider_kit.base import ProviderBase


class NoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenCredentials(BaseModel):
    token: SecretStr


Behaviour = Callable[[PhoneMessage], Any]


class ScriptedProvider(ProviderBase):
    """A provider whose ``send`` runs ``behaviour`` (raise, hang, or return a message id)."""

    config_model: type[BaseModel] = NoSettings
    credentials_model: type[BaseModel] = NoSettings

    def __init__(
        self,
        name: str,
        behaviour: Behaviour | None = None,
        channels: frozenset[Channel] = frozenset({"sms", "voice"}),
    ) -> None:
        self.name = name
        self.channels = channels
        self.behaviour = behaviour
        self.sent: list[PhoneMessage] = []
        self.credentials: list[Any] = []
        self.closed = False

    async def send(self, message: PhoneMessage, config: Any, credentials: Any) -> Receipt:
        self.sent.append(message)
        self.credentials.append(credentials)
        result = self.behaviour(message) if self.behaviour else None
        if asyncio.iscoroutine(result):
            result = await result
        return Receipt(provider=self.name, message_id=result or f"{self.name}-{len(self.sent)}")

    async def aclose(self) -> None:
        self.closed = True


class ProvidersPlugin:
    """Registers the given providers, like a third-party plugin package would."""

    def __init__(self, *providers: object) -> None:
        self.providers = providers

    @hookimpl
    def register_providers(self, register: Callable[[Any], None]) -> None:
        for provider in self.providers:
            register(provider)
