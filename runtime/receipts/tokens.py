"""Per-delivery secret tokens for providers that sign nothing of their own callbacks.

Infobip's and Sinch's delivery reports carry no signature this service can check (Sinch signs
only when the account manager configured it), so the callback URL itself is the secret: it
ends with an HMAC-SHA256 of the provider, tenant and delivery id under a key derived from the
master keyring (never stored). Only the provider that was given the URL knows it; a guessed or
copied token for another delivery does not match. The key id in front keeps tokens made before
a key rotation valid while the old key is still listed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from runtime.receipts.urls import callback_url
from runtime.store.crypto import Keyring, key_id

__all__ = ["ReceiptTokens", "TokenCallbacks", "token_callbacks"]

_PURPOSE = b"phone-actions receipt url token\x00"


class ReceiptTokens:
    """Makes and checks the token of one delivery's callback URL."""

    def __init__(self, keyring: Keyring) -> None:
        self._keys = {key_id(key): hashlib.sha256(_PURPOSE + key).digest() for key in keyring.keys}
        self._current = key_id(keyring.keys[0])

    def token(self, provider: str, tenant: str, delivery_id: str) -> str:
        """``<key id>.<hex>`` for this delivery, with the sealing key."""
        return f"{self._current}.{_mac(self._keys[self._current], provider, tenant, delivery_id)}"

    def valid(self, provider: str, tenant: str, delivery_id: str, token: str) -> bool:
        """Whether ``token`` was made for this provider, tenant and delivery (constant time)."""
        kid, _, mac = token.partition(".")
        key = self._keys.get(kid)
        if key is None or not mac:
            return False
        return hmac.compare_digest(_mac(key, provider, tenant, delivery_id), mac)


def _mac(key: bytes, provider: str, tenant: str, delivery_id: str) -> str:
    text = f"{provider}\x1f{tenant}\x1f{delivery_id}".encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()[:40]


@dataclass(frozen=True)
class TokenCallbacks:
    """The callback URLs a provider plugin puts on its outgoing requests."""

    public_base_url: str
    tokens: ReceiptTokens

    def url(self, provider: str, tenant: str, delivery_id: str) -> str:
        """``{public_base_url}/api/v2/receipts/{provider}/{tenant}/{delivery_id}/{token}``."""
        base = callback_url(self.public_base_url, provider, tenant, delivery_id)
        return f"{base}/{self.tokens.token(provider, tenant, delivery_id)}"


def token_callbacks(settings: Any) -> TokenCallbacks | None:
    """For a plugin's registration: None when the operator set no ``public_base_url`` (then
    no receipt is asked for), else the URLs under the service's master keyring."""
    base = getattr(settings, "public_base_url", None)
    if not base:
        return None
    master = settings.master_key.get_secret_value() if settings.master_key else None
    return TokenCallbacks(base, ReceiptTokens(Keyring.load(master, settings.data_dir)))
