"""``LeanRoute``: an APIRoute for the hot routes (sending a code, testing an action) that
gathers its parameters itself instead of through FastAPI's per-request dependency solver.

FastAPI documents the route exactly as before (the route is an APIRoute, built from the same
signature); only the request handler differs. Per request FastAPI's handler reads the body
with ``json.loads``, validates it as Python objects, walks every dependency with its cache and
scope bookkeeping, wraps the call in two exit stacks and encodes the answer with
``jsonable_encoder`` and ``json.dumps``: about 400 us of CPU a request at 50 clients
(bench/api.py, profiled), a tenth of a delivery's whole cost. This handler validates the body
bytes with pydantic's JSON parser in one step, calls each dependency once and encodes a plain
answer with orjson.

The parameters it accepts are the ones those routes use, checked when the route is declared
(anything else is refused by name, so a new parameter cannot be silently ignored): string
path parameters, one body model, ``Request``, and dependencies without sub-dependencies (such
as :func:`runtime.api.auth.require` and :data:`runtime.api.deps.ServicesDep`). Errors are the
ones FastAPI raises, with the same shapes: a missing body, a body that is not JSON, JSON that
does not parse and invalid fields are each a ``RequestValidationError`` with the same types
and locations, rendered by the app's handler (runtime/api/errors.py). One deliberate
difference: the token is checked before the body is parsed (FastAPI parses the JSON first),
so a caller without a valid token never learns whether its JSON parses.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

import orjson
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["LeanRoute"]

_NOT_AN_OBJECT = "Input should be a valid dictionary or object to extract fields from"


class LeanRoute(APIRoute):
    """See the module docstring. Use as ``APIRouter(route_class=LeanRoute)``."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self._check_parameters()
        self.app = self._serve

    def _check_parameters(self) -> None:
        d = self.dependant
        where = f"LeanRoute {self.path!r} ({self.endpoint.__name__})"
        unsupported = {
            "query": d.query_params,
            "header": d.header_params,
            "cookie": d.cookie_params,
        }
        for kind, found in unsupported.items():
            if found:
                raise TypeError(f"{where}: {kind} parameter {found[0].name!r} is not supported")
        for name in (d.websocket_param_name, d.response_param_name, d.background_tasks_param_name):
            if name:
                raise TypeError(f"{where}: parameter {name!r} is not supported")
        for param in d.path_params:
            if param.field_info.annotation is not str:
                raise TypeError(f"{where}: path parameter {param.name!r} must be a str")
        if len(d.body_params) > 1:
            raise TypeError(f"{where}: one body parameter at most")
        self._body: tuple[str, type[BaseModel]] | None = None
        if d.body_params:
            field = d.body_params[0]
            model = field.field_info.annotation
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise TypeError(f"{where}: body parameter {field.name!r} must be a model")
            self._body = (field.name, model)
        self._calls: list[tuple[str, Callable[[Request], Awaitable[Any]]]] = []
        for sub in d.dependencies:
            if sub.dependencies or sub.body_params or not sub.name or sub.call is None:
                raise TypeError(f"{where}: dependency {sub.name!r} must be a plain one")
            if not inspect.iscoroutinefunction(sub.call):
                raise TypeError(f"{where}: dependency {sub.name!r} must be async")
            if sub.request_param_name is None or len(inspect.signature(sub.call).parameters) != 1:
                raise TypeError(f"{where}: dependency {sub.name!r} must take the request only")
            self._calls.append((sub.name, sub.call))
        self._paths = [param.name for param in d.path_params]
        self._status = self.status_code or 200

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        values: dict[str, Any] = {name: request.path_params[name] for name in self._paths}
        for name, call in self._calls:  # the token first: a 401/403 before the body is read
            values[name] = await call(request)
        if self._body is not None:
            name, model = self._body
            values[name] = _validated(model, await request.body(), request)
        if self.dependant.request_param_name:
            values[self.dependant.request_param_name] = request
        answer = await self.endpoint(**values)
        if not isinstance(answer, Response):
            answer = Response(_json(answer), self._status, media_type="application/json")
        await answer(scope, receive, send)


def _validated(model: type[BaseModel], raw: bytes, request: Request) -> BaseModel:
    """``raw`` as ``model``, or the RequestValidationError FastAPI would have raised."""
    if not raw:
        _refuse([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    if not _is_json(request.headers.get("content-type")):
        _refuse([{"type": "model_attributes_type", "loc": ("body",), "msg": _NOT_AN_OBJECT}])
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if errors and errors[0]["type"] == "json_invalid":
            _refuse([{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error"}])
        _refuse([{**error, "loc": ("body", *error["loc"])} for error in errors])


def _refuse(errors: Sequence[Any]) -> NoReturn:
    raise RequestValidationError(errors)


def _is_json(content_type: str | None) -> bool:
    """application/json or application/*+json (FastAPI's rule; parameters ignored)."""
    if not content_type:
        return False
    kind = content_type.partition(";")[0].strip().lower()
    main, _, sub = kind.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _json(answer: Any) -> bytes:
    try:
        return orjson.dumps(answer)
    except TypeError:  # a type orjson does not know: FastAPI's encoder, as before
        return orjson.dumps(jsonable_encoder(answer))
