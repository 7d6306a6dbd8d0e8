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
import contextlib
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from runtime.errors import ConfigurationError

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
        if value:
            return cls(_parse(value, _SETTING))
        path = data_dir / KEY_FILE
        if not path.exists():
            _create(path)
        return cls(_parse(_read(path), str(path)))

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


def _parse(text: str, source: str) -> tuple[bytes, ...]:
    entries = [e.strip() for e in text.replace("\n", ",").split(",") if e.strip()]
    if not entries:
        raise ConfigurationError(f"{source}: no key given")
    return tuple(_decode(entry, number, source) for number, entry in enumerate(entries, 1))


def _decode(entry: str, number: int, source: str) -> bytes:
    try:
        key = base64.b64decode(entry, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigurationError(
            f"{source}: key {number} is not base64 of 32 bytes (make one with "
            '`python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"`)'
        )
    return key


def _read(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise ConfigurationError(
                f"{path}: the master key file is readable by other users "
                f"(mode {mode & 0o777:o}); run chmod 600 {path}"
            )
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read the master key file: {exc}") from None


def _create(path: Path) -> None:
    """Write a new key to ``path`` with mode 0600; a process that lost the race keeps the
    winner's key (the file appears whole, by a hard link of a finished temporary file)."""
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot create the master key file: {exc}") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()
