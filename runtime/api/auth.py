"""Bearer-token checks: who calls (one tenant) and what it may do (Auth0's scopes).

``require("read:actions")`` is a FastAPI dependency that answers 401 with Auth0's messages
(no token, a bad or expired one, another audience), 403 ``Insufficient scope, expected any
of: read:actions``, 404 ``inexistent_tenant`` when the token's tenant does not exist
(:func:`require_tenant`), and otherwise gives the route a :class:`Principal`. It runs on the event
loop (an ``async`` dependency: HS256 verification takes microseconds, a thread hop more).

It reads the Authorization header itself rather than through a ``Security(HTTPBearer())``
sub-dependency: FastAPI resolves a security dependency with its scopes bookkeeping on every
request (about 250 us of CPU a call at 50 clients, bench/api.py). The OpenAPI document still
names the bearer scheme on every route that requires a scope: :func:`document_bearer`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from runtime.api.errors import ApiError
from runtime.api.scopes import SCOPES
from runtime.api.tokens import SigningKeys, TokenError
from runtime.errors import ConfigurationError, StoreUnavailableError, UnknownTenantError

__all__ = ["Principal", "document_bearer", "issue_token", "require", "require_tenant"]

BEARER_SCHEME = "HTTPBearer"
_BEARER = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": 'A token from `phone-actions token create --tenant ID --scope "..."`.',
}
_SCOPE_OF: dict[Callable[..., Any], str] = {}  # each require() dependency, and its scope


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

    async def principal(request: Request) -> Principal:
        claims = verify_request(request)
        if scope not in claims.scopes:
            raise ApiError(
                403, f"Insufficient scope, expected any of: {scope}", "insufficient_scope"
            )
        await require_tenant(request, claims.tenant)
        return claims

    principal.__name__ = f"require_{scope.replace(':', '_')}"
    _SCOPE_OF[principal] = scope
    return principal


def document_bearer(app: FastAPI) -> None:
    """Name the bearer scheme in ``app``'s OpenAPI document, and on each operation whose
    route depends on :func:`require` (what ``Security(HTTPBearer())`` would have said)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("securitySchemes", {})[BEARER_SCHEME] = (
                _BEARER
            )
            for route in app.routes:
                if not isinstance(route, APIRoute) or not _requires_scope(route.dependant):
                    continue
                operations = schema["paths"].get(route.path_format, {})
                for method in route.methods or ():
                    if method.lower() in operations:
                        operations[method.lower()]["security"] = [{BEARER_SCHEME: []}]
        return app.openapi_schema  # type: ignore[return-value]  # set by build()

    app.openapi = openapi  # type: ignore[method-assign]


def _requires_scope(dependant: Dependant) -> bool:
    return any(each.call in _SCOPE_OF or _requires_scope(each) for each in dependant.dependencies)


async def require_tenant(request: Request, tenant: str) -> None:
    """Raise :class:`UnknownTenantError` (404 ``inexistent_tenant``) when the token's tenant
    is not in the database (deleted, or never made), so that every route answers it alike.

    The tenant directory answers: a held tenant from memory, an unknown id remembered for a
    second, so a stream of such tokens is not a stream of queries. A tenant that cannot be
    read now (the database does not answer) or whose configuration cannot be used is left
    to the route, which says so in its own terms (503, or the delivery's report)."""
    services = getattr(request.app.state, "services", None)
    if services is None:  # an app without the service's parts (a test of the auth alone)
        return
    try:
        await services.directory.aget(tenant)
    except UnknownTenantError:
        raise
    except (ConfigurationError, StoreUnavailableError):
        return


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
