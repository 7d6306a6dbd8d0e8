"""Bearer-token checks: who calls (one tenant) and what it may do (Auth0's scopes).

``require("read:actions")`` is a FastAPI dependency that answers 401 with Auth0's messages
(no token, a bad or expired one, another audience) and 403 ``Insufficient scope, expected any
of: read:actions``, and otherwise gives the route a :class:`Principal`. It runs on the event
loop (an ``async`` dependency: HS256 verification takes microseconds, a thread hop more).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from runtime.api.errors import ApiError
from runtime.api.scopes import SCOPES
from runtime.api.tokens import SigningKeys, TokenError

__all__ = ["Principal", "issue_token", "require"]

_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description='A token from `phone-actions token create --tenant ID --scope "..."`.',
)


@dataclass(frozen=True)
class Principal:
    """The caller: the one tenant its token is bound to, and the scopes it carries."""

    tenant: str
    scopes: frozenset[str]


def issue_token(settings: Any, *, tenant: str, scopes: list[str], ttl: int = 86400) -> str:
    """A token for ``tenant`` signed with the settings' signing key (made on first use)."""
    return SigningKeys.from_settings(settings).issue(tenant=tenant, scopes=scopes, ttl=ttl)


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """The dependency that admits a token carrying ``scope`` (see the module docstring)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def principal(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal:
        claims = verify_request(request)
        if scope not in claims.scopes:
            raise ApiError(
                403, f"Insufficient scope, expected any of: {scope}", "insufficient_scope"
            )
        return claims

    principal.__name__ = f"require_{scope.replace(':', '_')}"
    return principal


def verify_request(request: Request) -> Principal:
    """The principal of ``request``'s bearer token; :class:`ApiError` 401 otherwise."""
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("Missing authentication", "missing_authentication")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise _unauthorized("Bad HTTP authentication header format", "invalid_header")
    keys: SigningKeys = request.app.state.signing_keys
    try:
        claims = keys.verify(token)
    except TokenError as exc:
        raise _unauthorized(exc.message, exc.error_code) from None
    return Principal(tenant=claims.tenant, scopes=claims.scopes)


def _unauthorized(message: str, code: str) -> ApiError:
    challenge = 'Bearer realm="phone-actions"'
    if code != "missing_authentication":
        challenge += f', error="invalid_token", error_description="{message}"'
    return ApiError(401, message, code, headers={"WWW-Authenticate": challenge})
