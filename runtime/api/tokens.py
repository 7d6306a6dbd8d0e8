"""Bearer tokens of the Management API: HS256 JWTs (PyJWT) carrying Auth0's ``scope`` claim.

The signing key is kept like the master key: ``PHONE_ACTIONS_SIGNING_KEY`` (base64 of 32 or
more random bytes; several comma-separated, newest first, to rotate: the first signs, every
one verifies, chosen by the token's ``kid``), or else the file ``signing.key`` in the data
folder, made with mode 0600 on the first start. Each token names one tenant (``tenant``
claim), the issuer ``phone-actions`` and the audience ``phone-actions:management-api``.

No FastAPI here: ``phone-actions token create`` imports only this module and PyJWT.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from runtime.errors import ConfigurationError
from runtime.key_files import load_keys

__all__ = [
    "ALGORITHM",
    "AUDIENCE",
    "ISSUER",
    "KEY_FILE",
    "TENANT_CLAIM",
    "Claims",
    "SigningKeys",
    "TokenError",
]

KEY_FILE = "signing.key"
ISSUER = "phone-actions"
AUDIENCE = "phone-actions:management-api"
TENANT_CLAIM = "tenant"
ALGORITHM = "HS256"
MAX_TTL = 366 * 86400
_SETTING = "PHONE_ACTIONS_SIGNING_KEY"
_EXPIRED = "Expired token received for JSON Web Token validation"
_LEEWAY = 30  # seconds of clock skew between nodes accepted on exp/iat
VERIFIED_CACHE = 4096
"""Tokens remembered once verified (their exact text): PyJWT's checks cost ~100 µs a request,
a lookup ~1 µs. Bounded, oldest out first; a remembered token's expiry is checked every time."""


class TokenError(Exception):
    """A token that cannot be accepted; ``message`` is Auth0's wording for the client."""

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code


@dataclass(frozen=True)
class Claims:
    """What a verified token says: its tenant and its scopes."""

    tenant: str
    scopes: frozenset[str]
    subject: str
    token_id: str


def key_id(key: bytes) -> str:
    """A short public name for ``key`` (not reversible), written in each token's header."""
    return hashlib.sha256(b"phone-actions signing key id\x00" + key).hexdigest()[:8]


@dataclass(frozen=True)
class SigningKeys:
    """The signing keys: the first signs, all verify. Build it with :meth:`load`."""

    keys: tuple[bytes, ...]
    _by_id: dict[str, bytes] = field(init=False, repr=False, compare=False)
    _verified: dict[str, tuple[Claims, float]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ConfigurationError(f"{_SETTING}: no key given")
        object.__setattr__(self, "_by_id", {key_id(k): k for k in self.keys})
        object.__setattr__(self, "_verified", {})

    @classmethod
    def load(cls, value: str | None, data_dir: Path) -> SigningKeys:
        """From ``value`` (the setting) when given, else from ``data_dir/signing.key``, made on
        the first start. A bad key or an unsafe file is one line naming it."""
        return cls(
            load_keys(value, data_dir / KEY_FILE, setting=_SETTING, what="signing key", exact=False)
        )

    @classmethod
    def from_settings(cls, settings: Any) -> SigningKeys:
        """The keys ``settings`` name (``signing_key``, else the file in ``data_dir``)."""
        secret = getattr(settings, "signing_key", None)
        return cls.load(secret.get_secret_value() if secret else None, settings.data_dir)

    def issue(self, *, tenant: str, scopes: list[str], ttl: int = 86400) -> str:
        """A token for ``tenant`` with ``scopes``, valid ``ttl`` seconds from now."""
        if not 0 < ttl <= MAX_TTL:
            raise ValueError(f"ttl must be from 1 to {MAX_TTL} seconds")
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": f"tenant:{tenant}",
            TENANT_CLAIM: tenant,
            "scope": " ".join(dict.fromkeys(scopes)),
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(
            claims, self.keys[0], algorithm=ALGORITHM, headers={"kid": key_id(self.keys[0])}
        )

    def verify(self, token: str) -> Claims:
        """The claims of ``token``; :class:`TokenError` with Auth0's message otherwise.

        A token verified before (the same text, so the same signature) is answered from a
        bounded memory of them; its expiry is still checked on every use."""
        known = self._verified.get(token)
        if known is not None:
            claims, expires = known
            if time.time() < expires + _LEEWAY:  # as PyJWT: expired once exp + leeway is past
                return claims
            self._verified.pop(token, None)
            raise TokenError(_EXPIRED, "token_expired")
        claims, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE:
            self._verified.pop(next(iter(self._verified)), None)
        self._verified[token] = (claims, expires)
        return claims

    def _verify(self, token: str) -> tuple[Claims, float]:
        """PyJWT's full check of ``token``: its claims and its expiry (epoch seconds)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenError("Invalid token", "invalid_token") from None
        key = self._by_id.get(str(header.get("kid")))
        if key is None or header.get("alg") != ALGORITHM:
            raise TokenError("Invalid token", "invalid_token")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=_LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError(_EXPIRED, "token_expired") from None
        except jwt.InvalidAudienceError:
            raise TokenError(f"Bad audience: {_audience(token)}", "invalid_audience") from None
        except jwt.InvalidIssuerError:
            raise TokenError("Bad issuer", "invalid_issuer") from None
        except jwt.InvalidTokenError:
            raise TokenError("Invalid token", "invalid_token") from None
        tenant = claims.get(TENANT_CLAIM)
        scope = claims.get("scope", "")
        if not isinstance(tenant, str) or not tenant or not isinstance(scope, str):
            raise TokenError("Invalid token", "invalid_token")
        verified = Claims(
            tenant=tenant,
            scopes=frozenset(scope.split()),
            subject=str(claims["sub"]),
            token_id=str(claims.get("jti", "")),
        )
        return verified, float(claims["exp"])


def _audience(token: str) -> str:
    """The audience a (signature-checked) token names, for Auth0's ``Bad audience`` line."""
    try:
        aud = jwt.decode(token, options={"verify_signature": False}).get("aud")
    except jwt.InvalidTokenError:
        return ""
    return " ".join(aud) if isinstance(aud, list) else str(aud)
