"""Encryption at rest with the runtime's master key: the one place that holds it.

What the runtime stores and must not show to whoever reads the database (a queued delivery's
code today, tenants' secrets later) is sealed with AES-256-GCM (``cryptography``'s AEAD), bound
to where it is stored (associated data, so a ciphertext copied into another row does not open).

The key: ``PHONE_ACTIONS_MASTER_KEY`` (base64 of 32 bytes), or else the file ``master.key`` in
the data folder, made with mode 0600 on the first start. Every ciphertext starts with the id of
the key that made it (``pa1.<key id>.<base64>``); several keys may be given, comma-separated,
newest first: the first one seals, every one opens. Rotation is adding a new key in front,
and dropping the old one once nothing sealed with it is kept (queued work lasts minutes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from runtime.errors import ConfigurationError
from runtime.key_files import load_keys

__all__ = ["KEY_FILE", "Keyring", "SealError", "key_id"]

KEY_FILE = "master.key"
_SETTING = "PHONE_ACTIONS_MASTER_KEY"
_VERSION = "pa1"
_NONCE = 12


class SealError(ValueError):
    """A ciphertext that cannot be opened: unknown key id, damaged, or stored elsewhere."""


def key_id(key: bytes) -> str:
    """A short public name for ``key`` (not reversible), written in front of its ciphertexts."""
    return hashlib.sha256(b"phone-actions key id\x00" + key).hexdigest()[:8]


@dataclass(frozen=True)
class Keyring:
    """The master keys: the first seals, all open. Build it with :meth:`load`."""

    keys: tuple[bytes, ...]
    _ciphers: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ConfigurationError(f"{_SETTING}: no key given")
        object.__setattr__(self, "_ciphers", {key_id(k): AESGCM(k) for k in self.keys})

    @property
    def current(self) -> str:
        """The id of the key that seals."""
        return key_id(self.keys[0])

    @classmethod
    def load(cls, value: str | None, data_dir: Path) -> Keyring:
        """From ``value`` (the setting) when given, else from ``data_dir/master.key``, which is
        made on the first start. A bad key or an unsafe file is one line naming it."""
        return cls(
            load_keys(value, data_dir / KEY_FILE, setting=_SETTING, what="master key", exact=True)
        )

    def seal(self, plaintext: bytes, context: str) -> str:
        """``plaintext`` encrypted with the current key, for the place named ``context``."""
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._ciphers[self.current].encrypt(nonce, plaintext, context.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{_VERSION}.{self.current}.{body}"

    def open(self, token: str, context: str) -> bytes:
        """The plaintext of ``token`` sealed for ``context``; :class:`SealError` otherwise."""
        version, _, rest = token.partition(".")
        kid, _, body = rest.partition(".")
        if version != _VERSION or not body:
            raise SealError("not a sealed value of this runtime")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise SealError(f"sealed with key {kid}, which is not among {_SETTING}'s keys")
        try:
            raw = base64.urlsafe_b64decode(body)
            return cipher.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode())
        except (binascii.Error, ValueError, InvalidTag):
            raise SealError(f"a value sealed with key {kid} is damaged or not from here") from None
