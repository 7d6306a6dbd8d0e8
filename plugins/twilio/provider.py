"""The Twilio provider: SMS through Messages, voice through Calls with inline TwiML.

One aiohttp session per ``base_url`` (pooled connections, created in the running loop on first
use) and one SDK ``Client`` per account, base URL and token; :meth:`TwilioProvider.aclose`
closes the sessions. Requests are never retried here: a retry may deliver a second code, and
the pipeline decides about retries and fallbacks from the :class:`ProviderError` raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pydantic import (
    Field,
    SecretStr,
    model_validator,
)
from twilio.rest import Client

from plugins.twilio.errors import configuration_error, provider_error
from plugins.twilio.http import RewritingAsyncHttpClient, request_timeout
from plugins.twilio.voice import voice_twiml
from runtime.errors import ProviderError
from runtime.events import Channel
from runtime.http import HttpObserver, wait_for_share
from runtime.observing import observed_by
from runtime.provider_kit import (
    AbsoluteUrl,
    E164Number,
    OriginUrl,
    ProviderCredentials,
    ProviderSettings,
    validated,
)
from runtime.providers import PhoneMessage, Receipt
from runtime.receipts.urls import callback_url
from runtime.tenant_shares import TenantShares

__all__ = ["TwilioConfig", "TwilioCredentials", "TwilioProvider"]

TWILIO_API = "https://api.twilio.com"


class TwilioConfig(ProviderSettings):
    """A tenant's public Twilio settings."""

    from_number: E164Number | None = Field(
        default=None, description="Twilio number (E.164) to send from; required for voice."
    )
    messaging_service_sid: str | None = Field(
        default=None,
        pattern=r"^MG[0-9a-fA-F]{32}$",
        description="Messaging Service to send SMS through; used instead of from_number.",
    )
    base_url: OriginUrl = Field(
        default=TWILIO_API,
        description="Where Twilio requests go (scheme://host[:port]); tests use a local stub.",
    )
    status_callback: AbsoluteUrl | None = Field(
        default=None, description="URL Twilio reports delivery status to."
    )

    @model_validator(mode="after")
    def _need_a_sender(self) -> TwilioConfig:
        if self.from_number is None and self.messaging_service_sid is None:
            raise ValueError(
                "set from_number (a Twilio number in E.164) or messaging_service_sid "
                "(MG...): Twilio needs a sender; voice calls need from_number"
            )
        return self


class TwilioCredentials(ProviderCredentials):
    """A tenant's Twilio secrets (write-only: never shown, never logged)."""

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr = Field(min_length=1)


SDK_POOL_SIZE = 100
"""Connections of the SDK's aiohttp session (aiohttp's default limit, which it keeps)."""


class _Pool:
    """The HTTP client of one base URL, the SDK clients that share it, and each tenant's
    share of its connections (the SDK's session holds 100: :mod:`runtime.tenant_shares`)."""

    def __init__(self, base_url: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.http = RewritingAsyncHttpClient(base_url)
        self.clients: dict[tuple[str, str], Any] = {}
        self.shares = TenantShares(SDK_POOL_SIZE)


class TwilioProvider:
    """Delivers codes by SMS and voice through Twilio's 2010-04-01 API."""

    name: str = "twilio"
    channels: frozenset[Channel] = frozenset({"sms", "voice"})
    config_model: type[TwilioConfig] = TwilioConfig
    credentials_model: type[TwilioCredentials] = TwilioCredentials
    # Every request gets the attempt's budget as aiohttp's total timeout (request_timeout).
    enforces_timeout = True
    reaches_phones = True
    accepts_observer = True  # send(..., observer=): recordings and replays see its requests

    def __init__(self, *, public_base_url: str | None = None) -> None:
        self._pools: dict[str, _Pool] = {}
        self.public_base_url = public_base_url  # set: Twilio reports status to this service

    def __repr__(self) -> str:
        return f"TwilioProvider(pools={sorted(self._pools)})"

    def check(
        self,
        message: PhoneMessage,
        config: TwilioConfig | Mapping[str, Any],
        credentials: TwilioCredentials | Mapping[str, Any],
    ) -> None:
        """Raise the ``configuration_error`` :meth:`send` would raise before any request."""
        self._checked(message, config, credentials)

    def _checked(
        self,
        message: PhoneMessage,
        config: TwilioConfig | Mapping[str, Any],
        credentials: TwilioCredentials | Mapping[str, Any],
    ) -> tuple[TwilioConfig, TwilioCredentials]:
        settings = validated(TwilioConfig, config, label="Twilio", what="config")
        secrets = validated(TwilioCredentials, credentials, label="Twilio", what="credentials")
        if message.channel == "voice" and settings.from_number is None:
            raise configuration_error(
                "Twilio voice calls need from_number (a Messaging Service SID only sends SMS)"
            )
        return settings, secrets

    async def send(
        self,
        message: PhoneMessage,
        config: TwilioConfig | Mapping[str, Any],
        credentials: TwilioCredentials | Mapping[str, Any],
        *,
        observer: HttpObserver | None = None,
    ) -> Receipt:
        """Hand ``message`` to Twilio; raise :class:`ProviderError` saying if it may be sent.

        ``config`` and ``credentials`` may also come as plain mappings (validated here).
        ``observer`` sees the SDK's requests (routed by :mod:`runtime.observing`)."""
        settings, secrets = self._checked(message, config, credentials)
        token = secrets.auth_token.get_secret_value()
        if message.timeout <= 0:
            raise ProviderError(
                "timeout", "no time left for this attempt", retryable=True, handed_off=False
            )
        pool, client = self._client(settings, secrets.account_sid, token)
        budget = message.timeout
        if not pool.shares.try_take(message.tenant):
            budget = await wait_for_share(pool.shares, message.tenant, budget, "Twilio")
        try:
            with request_timeout(budget), observed_by(observer):
                if message.channel == "voice":
                    params = _call_params(message, settings)
                    resource = await client.calls.create_async(**self._receipts(params, message))
                else:
                    params = _message_params(message, settings)
                    resource = await client.messages.create_async(**self._receipts(params, message))
        except ProviderError:
            raise  # already classified (a replay's divergence)
        except Exception as exc:
            secret = (message.code, message.text, token)
            raise provider_error(exc, secrets=secret) from exc
        finally:
            pool.shares.give_back(message.tenant)
        sid = getattr(resource, "sid", None)
        if not isinstance(sid, str) or not sid:
            raise ProviderError(
                "malformed_response",
                "Twilio accepted the request but its answer has no sid",
                retryable=False,
                handed_off=True,
            )
        status = getattr(resource, "status", None)
        return Receipt(
            provider=self.name, message_id=sid, status=status if isinstance(status, str) else None
        )

    def _receipts(self, params: dict[str, Any], message: PhoneMessage) -> dict[str, Any]:
        """``params`` asking Twilio for this service's receipt route, unless the tenant set
        its own ``status_callback`` or no public_base_url is set (runtime/receipts)."""
        url = callback_url(self.public_base_url, self.name, message.tenant, message.id)
        if url and "status_callback" not in params:
            params["status_callback"] = url
        return params

    async def aclose(self) -> None:
        """Close every pooled session; a later send opens new ones."""
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            await pool.http.close()

    def _client(self, config: TwilioConfig, account_sid: str, token: str) -> tuple[_Pool, Any]:
        """The base URL's pool (its session, the tenants' shares of it), and the SDK client
        for this account on it."""
        pool = self._pools.get(config.base_url)
        if pool is None or pool.http.closed or pool.loop is not asyncio.get_running_loop():
            # A session is bound to its event loop; a new loop (a new asyncio.run) needs its own.
            pool = self._pools[config.base_url] = _Pool(config.base_url)
        key = (account_sid, token)
        client = pool.clients.get(key)
        if client is None:
            client = pool.clients[key] = Client(account_sid, token, http_client=pool.http)
        return pool, client


def _message_params(message: PhoneMessage, config: TwilioConfig) -> dict[str, Any]:
    """Messages.json fields: the Messaging Service when configured, else the From number."""
    params: dict[str, Any] = {"to": message.recipient, "body": message.text}
    if config.messaging_service_sid is not None:
        params["messaging_service_sid"] = config.messaging_service_sid
    else:
        params["from_"] = config.from_number
    if config.status_callback is not None:
        params["status_callback"] = config.status_callback
    return params


def _call_params(message: PhoneMessage, config: TwilioConfig) -> dict[str, Any]:
    """Calls.json fields. (The SDK's ``timeout`` here is the ring time, not an HTTP timeout.)"""
    params: dict[str, Any] = {
        "to": message.recipient,
        "from_": config.from_number,
        "twiml": voice_twiml(message.text, message.locale),
    }
    if config.status_callback is not None:
        params["status_callback"] = config.status_callback
    return params
