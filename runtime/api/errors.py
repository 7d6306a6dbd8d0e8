"""Auth0's error shape on every error: ``{statusCode, error, message, errorCode}``.

The runtime's exceptions map to statuses here (NotFoundError 404, ConflictError 409, bad
input 400 naming the field, an unreachable database 503), request validation becomes Auth0's
``Payload validation error`` line naming the property, and nothing unexpected shows a
traceback to the client: it is logged with the request id and answered 500.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from runtime.errors import (
    UNKNOWN_PROPERTY,
    ConflictError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    StoreUnavailableError,
    UnknownTenantError,
)

__all__ = [
    "ApiError",
    "BodyTooLarge",
    "error_body",
    "error_response",
    "install_handlers",
    "payload_error",
]

log = logging.getLogger("runtime.api")

_MAX_SHOWN = 3  # validation errors named in one message; the rest are counted
_VALIDATOR_PREFIX = re.compile(r"^(?:Value error|Assertion failed), ")  # pydantic's, not ours


class ApiError(Exception):
    """An answer other than success, raised anywhere in a request: rendered in Auth0's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        error_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = headers


class BodyTooLarge(StarletteHTTPException):
    """A request body over the limit. An HTTPException so that FastAPI's body reading lets
    it through (it turns any other error while reading into a generic 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body exceeds the limit of {limit} bytes")


def error_body(status: int, message: str, error_code: str | None = None) -> dict[str, Any]:
    """Auth0's error object; ``errorCode`` is always present (null when there is none)."""
    return {
        "statusCode": status,
        "error": _phrase(status),
        "message": message,
        "errorCode": error_code,
    }


def error_response(
    status: int,
    message: str,
    error_code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(status, message, error_code), status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    """Register the handlers that render every error in Auth0's shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(UnknownTenantError, _unknown_tenant)
    app.add_exception_handler(ConflictError, _conflict)
    app.add_exception_handler(InvalidInputError, _invalid_input)
    app.add_exception_handler(StoreUnavailableError, _store_unavailable)
    app.add_exception_handler(Exception, _unexpected)


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.error_code, exc.headers)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
    message = exc.detail if isinstance(exc.detail, str) else _phrase(exc.status_code)
    return error_response(
        exc.status_code, message, codes.get(exc.status_code), dict(exc.headers or {}) or None
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    wrong_type = _not_json(request)
    if wrong_type is not None and any(tuple(e.get("loc", ())) == ("body",) for e in errors):
        # the body was never parsed as JSON (``curl -d`` sends a form's type): say why,
        # not that "the input should be a valid dictionary"
        return error_response(
            400, f"Content-Type must be application/json, not {wrong_type}", "invalid_body"
        )
    message, code = validation_message(errors)
    return error_response(400, message, code)


def _not_json(request: Request) -> str | None:
    """The request's media type when it gives one that is not JSON (``application/json`` or
    ``*/*+json``), else None (FastAPI reads a body without a Content-Type as JSON)."""
    given = request.headers.get("content-type")
    if not given:
        return None
    media = given.split(";", 1)[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return None
    return media or given


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(404, str(exc) or "Not Found", getattr(exc, "error_code", "not_found"))


async def _unknown_tenant(_request: Request, _exc: Exception) -> JSONResponse:
    # the token's tenant is gone: say so without naming where tenants are kept
    return error_response(404, "The tenant of this token does not exist.", "inexistent_tenant")


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(409, str(exc), getattr(exc, "error_code", "conflict"))


async def _invalid_input(_request: Request, exc: Exception) -> JSONResponse:
    code = "limit_exceeded" if isinstance(exc, LimitExceededError) else "invalid_body"
    if isinstance(exc, InvalidInputError) and exc.problems and code == "invalid_body":
        # a body that does not validate, found by the store: the shape of FastAPI's own
        error = payload_error(exc)
        return error_response(error.status, error.message, error.error_code)
    return error_response(400, str(exc), getattr(exc, "error_code", code))


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # the detail names the database: for the operator's log, not for tenants
    log.warning("request %s: %s", _request_id(request), exc)
    return error_response(
        503, "The service's database is unavailable; try again later.", "store_unavailable"
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("request %s failed", _request_id(request), exc_info=exc)
    return error_response(500, "Internal error", "internal_error")


def validation_message(errors: Sequence[Any]) -> tuple[str, str]:
    """Auth0's one line for FastAPI's validation errors, naming each property (never its
    value: a body may hold a code or a secret), and the matching ``errorCode``."""
    if errors and errors[0].get("type") == "json_invalid":
        return "Invalid request payload JSON format", "invalid_body"
    where = errors[0]["loc"][0] if errors and errors[0].get("loc") else "body"
    kind, code = {
        "query": ("Query validation error", "invalid_query_string"),
        "path": ("Path validation error", "invalid_uri"),
        "header": ("Header validation error", "invalid_headers"),
    }.get(str(where), ("Payload validation error", "invalid_body"))
    problems = [
        (
            tuple(error.get("loc", ())[1:]),
            UNKNOWN_PROPERTY
            if error.get("type") == "extra_forbidden"
            else _VALIDATOR_PREFIX.sub("", str(error.get("msg", ""))),
        )
        for error in errors
    ]
    return f"{kind}: {on_properties(problems)}", code


def payload_error(
    exc: InvalidInputError,
    *,
    prefix: tuple[str | int, ...] = (),
    rename: Mapping[str, str] | None = None,
) -> ApiError:
    """``exc`` as Auth0's 400 ``Payload validation error: 'MESSAGE' on property FIELD.``:
    each of its problems with its own message, the property under ``prefix`` and with the
    request's name where it differs (``rename``: ``{"recipient": "to"}``)."""
    problems = exc.problems or ((tuple((exc.field or "").split(".")), _own_message(exc)),)
    renamed = rename or {}
    named = []
    for loc, message in problems:
        head = (renamed.get(str(loc[0]), loc[0]),) if loc else ()
        named.append(((*prefix, *head, *loc[1:]), message))
    message = f"Payload validation error: {on_properties(named)}"
    return ApiError(400, message, getattr(exc, "error_code", "invalid_body"))


def on_properties(problems: Sequence[tuple[Sequence[Any], str]]) -> str:
    """``'MESSAGE' on property FIELD; ...`` for at most three problems (the rest counted),
    with the closing period."""
    parts = []
    for loc, message in problems[:_MAX_SHOWN]:
        field = property_path([part for part in loc if part != ""])
        text = f"'{message or 'invalid'}'"
        parts.append(f"{text} on property {field}" if field else text)
    more = len(problems) - _MAX_SHOWN
    tail = f" (and {more} more)" if more > 0 else ""
    return f"{'; '.join(parts)}{tail}."


def _own_message(exc: InvalidInputError) -> str:
    """``exc``'s message without the field it starts with."""
    text = str(exc)
    prefix = f"{exc.field}: " if exc.field else ""
    return text[len(prefix) :] if prefix and text.startswith(prefix) else text


def property_path(loc: Sequence[Any]) -> str:
    """``("secrets", 0, "value")`` as ``secrets[0].value``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "-"))
