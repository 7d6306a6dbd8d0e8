"""A local HTTP server that checks every request against a provider's OpenAPI spec.

It is a :class:`~tests.support.stub_server.StubServer` whose handler validates each request
with openapi-core, records what is wrong (:attr:`OpenApiServer.errors`), and answers valid
requests with a configurable success answer (invalid ones get 422, as prism would). Provider
plugins are pointed at :attr:`OpenApiServer.url` and send through their real SDK or client.

Specs live in ``tests/specs`` (their sources and licences: ``tests/specs/SOURCES.md``;
``PHONE_ACTIONS_SPECS_DIR`` overrides the directory). A missing spec fails the test: the
files are part of the repository, so a skip would only hide a broken checkout. Loading a big
spec takes seconds (Twilio's 1.8 MB file: about 2.5 s, nearly all of it openapi-core checking
the spec), so each file is loaded once per process; use it from a session-scoped fixture.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.support.stub_server import Body, RecordedRequest, StubServer

__all__ = [
    "SPECS_DIR_ENV",
    "OpenApiServer",
    "SpecRequest",
    "load_spec",
    "load_times",
    "request_errors",
    "spec_path",
    "specs_dir",
]

SPECS_DIR_ENV = "PHONE_ACTIONS_SPECS_DIR"
_load_times: dict[Path, float] = {}


def specs_dir() -> Path:
    """``$PHONE_ACTIONS_SPECS_DIR``, else the repository's ``tests/specs``."""
    configured = os.environ.get(SPECS_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[1] / "specs"


def spec_path(name: str) -> Path:
    """The spec file ``name``; a missing one fails the test (never skips it)."""
    path = specs_dir() / name
    if not path.is_file():
        pytest.fail(
            f"OpenAPI spec {name} not found in {path.parent} (tests/specs holds them; "
            f"{SPECS_DIR_ENV} overrides the directory)",
            pytrace=False,
        )
    return path


@functools.cache
def load_spec(path: Path) -> OpenAPI:
    """The spec at ``path``, parsed and checked once per process.

    JSON files are parsed with :mod:`json`: openapi-core reads every file with a YAML parser,
    which rejects JSON's surrogate-pair escapes (Twilio's spec has ``"\\ud83d\\udc4d"``).
    """
    started = time.perf_counter()
    if path.suffix == ".json":
        spec = OpenAPI.from_dict(json.loads(path.read_text("utf-8")), base_uri=path.as_uri())
    else:
        spec = OpenAPI.from_file_path(str(path))
    _load_times[path] = time.perf_counter() - started
    return spec


def load_times() -> dict[Path, float]:
    """Seconds each loaded spec took to load and check."""
    return dict(_load_times)


@dataclass
class SpecRequest:
    """A recorded request as openapi-core's ``Request`` protocol wants it."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters = field(default_factory=RequestParameters)


def _spec_request(recorded: RecordedRequest, host_url: str, path_prefix: str) -> SpecRequest:
    query = [(name, value) for name, values in recorded.query.items() for value in values]
    return SpecRequest(
        host_url=host_url,
        path=path_prefix + recorded.path,
        method=recorded.method.lower(),
        body=recorded.body or None,
        content_type=recorded.headers.get("content-type", "").lower(),
        parameters=RequestParameters(
            query=ImmutableMultiDict(query), header=Headers(list(recorded.headers.items()))
        ),
    )


def _describe(error: Exception) -> str:
    """The error and its cause (where openapi-core keeps the schema errors)."""
    text = f"{type(error).__name__}: {error}"
    cause = error.__cause__
    if cause is not None:
        details = getattr(cause, "schema_errors", None)
        if details:
            text += " [" + "; ".join(getattr(d, "message", str(d)) for d in details) + "]"
        else:
            text += f" [{type(cause).__name__}: {cause}]"
    return text


def request_errors(
    spec: OpenAPI, recorded: RecordedRequest, *, host_url: str, path_prefix: str = ""
) -> list[str]:
    """What is wrong with ``recorded`` according to ``spec`` (empty when it is valid).

    ``host_url`` is the spec's server (``https://api.twilio.com``); ``path_prefix`` is a
    server path the provider's base URL already contains (``/sms`` for Vonage SMS).
    """
    request = _spec_request(recorded, host_url, path_prefix)
    where = f"{recorded.method} {recorded.path}"
    return [f"{where}: {_describe(error)}" for error in spec.iter_request_errors(request)]


class OpenApiServer:
    """A validating stand-in for a provider API, on 127.0.0.1."""

    def __init__(
        self,
        spec: OpenAPI,
        *,
        host_url: str,
        path_prefix: str = "",
        status: int = 200,
        body: Body = b"",
        headers: dict[str, str] | None = None,
        invalid_status: int = 422,
    ) -> None:
        self.spec = spec
        self.host_url = host_url
        self.path_prefix = path_prefix
        self.invalid_status = invalid_status
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._answer: tuple[int, Body, dict[str, str]] = (status, body, dict(headers or {}))
        self._stub = StubServer()
        self._stub.respond_with(self._handle)
        self.url = self._stub.url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._stub.requests

    def respond(self, status: int, body: Body = b"", headers: dict[str, str] | None = None) -> None:
        """Answer every following valid request this way (dict/list as JSON)."""
        with self._lock:
            self._answer = (status, body, dict(headers or {}))

    def validate(self, recorded: RecordedRequest) -> list[str]:
        """The errors of one request, without recording them."""
        with self._lock:  # openapi-core's lazy spec accessors are not known to be thread-safe
            return request_errors(
                self.spec, recorded, host_url=self.host_url, path_prefix=self.path_prefix
            )

    def _handle(self, recorded: RecordedRequest) -> tuple[int, Body, dict[str, str]]:
        errors = self.validate(recorded)
        with self._lock:
            self.errors.extend(errors)
            answer = self._answer
        if errors:
            problem: dict[str, Any] = {
                "type": "https://stoplight.io/prism/errors#UNPROCESSABLE_ENTITY",
                "title": "Invalid request",
                "status": self.invalid_status,
                "detail": "; ".join(errors),
            }
            return self.invalid_status, problem, {"Content-Type": "application/problem+json"}
        return answer

    def stop(self) -> None:
        self._stub.stop()

    def __enter__(self) -> OpenApiServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
