"""The ``sns`` provider: Publish to a phone number, signed here (SigV4), sent with aiohttp.

Credentials: the tenant's static keys, or botocore's default chain (:mod:`plugins.sns.credentials`).
A success answer in SNS's exact shape is read with one regular expression; anything else is
parsed as XML and classified by :data:`plugins.sns.errors.ERRORS`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from plugins.sns.credentials import NO_CREDENTIALS, frozen_credentials, load_chain, refresh_due
from plugins.sns.errors import ERRORS
from plugins.sns.query import parse_xml, publish_body, published_message_id
from plugins.sns.settings import SnsConfig, SnsCredentials
from plugins.sns.sigv4 import amz_date, sigv4_headers, target
from runtime.events import Channel
from runtime.http import HttpObserver, HttpRequest, HttpResponse
from runtime.provider_kit import HttpProvider, answered_error, configuration_error, is_success
from runtime.providers import PhoneMessage, Receipt

__all__ = ["SnsProvider"]

_now: Callable[[], float] = time.time
"""The signing clock (tests freeze it)."""


class SnsProvider(HttpProvider[SnsConfig, SnsCredentials]):
    """SMS through Amazon SNS ``Publish``, signed here (SigV4), sent with aiohttp."""

    name = "sns"
    label = "Amazon SNS"
    channels = frozenset[Channel]({"sms"})
    config_model = SnsConfig
    credentials_model = SnsCredentials

    def __init__(self, *, max_connections: int = 100) -> None:
        super().__init__(max_connections=max_connections)
        self._chain: Any = None
        self._chain_lock = threading.Lock()

    async def send(
        self,
        message: PhoneMessage,
        config: SnsConfig | Mapping[str, Any],
        credentials: SnsCredentials | Mapping[str, Any],
        *,
        observer: HttpObserver | None = None,
    ) -> Receipt:
        """Deliver ``message``; without static keys, with botocore's chain (resolved and
        refreshed in a worker thread, never on the event loop)."""
        secrets = self._validated(SnsCredentials, credentials, "credentials")
        if secrets.access_key_id is None and message.channel in self.channels:
            chain = self._chain
            if chain is None or refresh_due(chain):
                secrets = await asyncio.to_thread(self._chain_credentials)
            else:
                secrets = frozen_credentials(chain)
        return await super().send(message, config, secrets, observer=observer)

    def _chain_credentials(self) -> SnsCredentials:
        """The chain's current keys; resolves the chain on first use (blocking)."""
        with self._chain_lock:
            if self._chain is None:
                self._chain = load_chain()
            chain = self._chain
        return frozen_credentials(chain)

    def build_request(
        self, message: PhoneMessage, config: SnsConfig, credentials: SnsCredentials
    ) -> HttpRequest:
        """The signed ``Publish`` of ``message``, at the current second.

        :meth:`send` hands it static keys or the chain's current keys. Called directly with
        no keys, it resolves the chain itself, blocking (files, maybe the network) on first
        use: do that off the event loop.
        """
        if credentials.access_key_id is None or credentials.secret_access_key is None:
            credentials = self._chain_credentials()  # only when called directly, not by send
        key_id, secret = credentials.access_key_id, credentials.secret_access_key
        if key_id is None or secret is None:  # _frozen always sets both
            raise configuration_error(NO_CREDENTIALS)
        where = target(config.endpoint)
        body = publish_body(message, config)
        token = credentials.session_token
        headers = sigv4_headers(
            where,
            body,
            region=config.region,
            access_key_id=key_id,
            secret_access_key=secret.get_secret_value(),
            session_token=token.get_secret_value() if token is not None else None,
            date=amz_date(_now()),
        )
        return HttpRequest("POST", where.url, headers, body)

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        if is_success(response.status):
            fast = published_message_id(response.body)
            if fast is not None:
                return Receipt(provider=self.name, message_id=fast)
        values = parse_xml(response.body)
        if is_success(response.status):
            message_id = values["MessageId"]
            if not message_id:
                raise ValueError("empty MessageId")
            return Receipt(provider=self.name, message_id=message_id)
        code = values.get("Code") or None
        text = values.get("Message") or "no details"
        if code is not None and ERRORS.says_refused(code):
            detail = f"Amazon SNS refused the message ({code}: {text})"
        else:
            detail = f"Amazon SNS answered HTTP {response.status}" + (
                f" ({code}: {text})" if code else ""
            )
        raise answered_error(response, code, detail, table=ERRORS)
