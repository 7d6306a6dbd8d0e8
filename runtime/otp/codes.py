"""One-time codes: drawn with :mod:`secrets`, kept only as an HMAC, compared in constant time.

A six-digit code has a million values: a plain hash of it is reversed by trying them all. The
HMAC is keyed with a key derived from the master key (never stored), and bound to the row's id,
so a leaked table gives neither the codes nor a way to test guesses offline. The key's id is
written in front of the digest, so a code made before a key rotation still verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from runtime.store.crypto import Keyring, key_id

__all__ = ["CodeHasher", "new_code"]

_PURPOSE = b"phone-actions otp code hmac\x00"


def new_code(length: int) -> str:
    """``length`` decimal digits from the OS's CSPRNG (leading zeros kept)."""
    return f"{secrets.randbelow(10**length):0{length}d}"


class CodeHasher:
    """HMAC-SHA256 of a code under a key derived from each master key."""

    def __init__(self, keyring: Keyring) -> None:
        self._keys = {key_id(key): hashlib.sha256(_PURPOSE + key).digest() for key in keyring.keys}
        self._current = key_id(keyring.keys[0])

    def digest(self, owner: str, code: str) -> str:
        """``<key id>:<hex>``: the HMAC of ``code`` for the row ``owner``, with the sealing key."""
        return f"{self._current}:{self._mac(self._keys[self._current], owner, code)}"

    def matches(self, owner: str, code: str, stored: str) -> bool:
        """Whether ``code`` is the one ``stored`` was made from (constant time in the code)."""
        kid, _, expected = stored.partition(":")
        key = self._keys.get(kid)
        if key is None:  # made under a key that is no longer configured: cannot match
            return False
        return hmac.compare_digest(self._mac(key, owner, code), expected)

    @staticmethod
    def _mac(key: bytes, owner: str, code: str) -> str:
        return hmac.new(key, f"{owner}\x1f{code}".encode(), hashlib.sha256).hexdigest()
