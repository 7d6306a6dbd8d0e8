"""LeanRoute answers exactly as FastAPI's own route does (the same endpoint served both ways:
success, a missing or non-JSON body, JSON that does not parse, bad fields, no token, a
missing scope, a path parameter, a status code), documents the same, and refuses at
declaration a parameter it would not fill."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field

from runtime.api.auth import Principal, require
from runtime.api.errors import install_handlers
from runtime.api.lean_route import LeanRoute
from runtime.api.tokens import SigningKeys


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=8)
    channel: Literal["sms", "voice"] = "sms"
    nested: dict[str, int] = {}


async def _who(request: Request) -> str:
    return str(request.url.path)


def _app(route_class: type[APIRoute], keys: SigningKeys) -> FastAPI:
    router = APIRouter(prefix="/p", route_class=route_class)

    @router.post("/{item}/send", status_code=201)
    async def send(
        item: str,
        body: Body,
        request: Request,
        principal: Annotated[Principal, Depends(require("create:phone_messages"))],
        who: Annotated[str, Depends(_who)],
    ) -> dict[str, Any]:
        return {
            "item": item,
            "body": body.model_dump(),
            "tenant": principal.tenant,
            "who": who,
            "method": request.method,
        }

    app = FastAPI()
    install_handlers(app)
    app.include_router(router)
    app.state.signing_keys = keys
    return app


@pytest.fixture
def clients(tmp_path: Any) -> tuple[TestClient, TestClient, str, str]:
    keys = SigningKeys.load(None, tmp_path)
    good = keys.issue(tenant="t1", scopes=["create:phone_messages"], ttl=600)
    other = keys.issue(tenant="t1", scopes=["read:actions"], ttl=600)
    return TestClient(_app(APIRoute, keys)), TestClient(_app(LeanRoute, keys)), good, other


JSON = "application/json"
CASES: list[tuple[str, bytes, str | None, str]] = [
    ("ok", b'{"to": "+1415", "nested": {"a": 1}}', JSON, "good"),
    ("ok, +json type", b'{"to": "+1"}', "application/vnd.x+json; charset=utf-8", "good"),
    ("empty body", b"", JSON, "good"),
    ("no content type", b'{"to": "+1"}', None, "good"),
    ("text content type", b'{"to": "+1"}', "text/plain", "good"),
    ("not an object", b"[1, 2]", JSON, "good"),
    ("missing field", b"{}", JSON, "good"),
    ("bad fields", b'{"to": "", "channel": "fax", "nested": {"a": "x"}, "extra": 1}', JSON, "good"),
    ("no token", b'{"to": "+1"}', JSON, "none"),
    ("no token, bad fields", b'{"to": ""}', JSON, "none"),
    ("missing scope", b'{"to": "+1"}', JSON, "other"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "content_type", "token"), CASES, ids=[c[0] for c in CASES]
)
def test_lean_route_answers_as_fastapi_does(
    clients: tuple[TestClient, TestClient, str, str],
    case: str,
    body: bytes,
    content_type: str | None,
    token: str,
) -> None:
    fastapi_client, lean_client, good, other = clients
    headers = {"content-type": content_type} if content_type else {}
    if token != "none":
        headers["authorization"] = f"Bearer {good if token == 'good' else other}"
    answers = [
        client.post("/p/it%20em/send", content=body, headers=headers)
        for client in (fastapi_client, lean_client)
    ]
    expected, got = answers
    assert (got.status_code, got.json()) == (expected.status_code, expected.json()), case
    assert got.headers.get("www-authenticate") == expected.headers.get("www-authenticate")
    if case.startswith("ok"):
        assert got.status_code == 201
        assert got.json()["item"] == "it em"


def test_json_that_does_not_parse_is_refused_in_auth0_shape(
    clients: tuple[TestClient, TestClient, str, str],
) -> None:
    _, lean_client, good, _ = clients
    answer = lean_client.post(
        "/p/x/send",
        content=b'{"to": ',
        headers={"content-type": JSON, "authorization": f"Bearer {good}"},
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "statusCode": 400,
        "error": "Bad Request",
        "message": "Invalid request payload JSON format",
        "errorCode": "invalid_body",
    }


def test_lean_route_is_documented_as_fastapi_documents_it(tmp_path: Any) -> None:
    keys = SigningKeys.load(None, tmp_path)
    assert _app(LeanRoute, keys).openapi() == _app(APIRoute, keys).openapi()


def test_a_parameter_lean_route_would_not_fill_is_refused_by_name() -> None:
    router = APIRouter(route_class=LeanRoute)
    with pytest.raises(TypeError, match="query parameter 'limit' is not supported"):

        @router.get("/items")
        async def items(limit: int = 10) -> None:  # pragma: no cover - never declared
            return None

    with pytest.raises(TypeError, match="path parameter 'n' must be a str"):

        @router.get("/items/{n}")
        async def item(n: int) -> None:  # pragma: no cover - never declared
            return None
