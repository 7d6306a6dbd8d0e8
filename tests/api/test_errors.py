"""Every error in Auth0's shape {statusCode, error, message, errorCode}, naming the field;
bodies over 1 MiB refused with 413 before they are read; request ids echoed and logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from runtime.api.middleware import MAX_BODY_BYTES, RequestIdFilter
from tests.api.conftest import Api

SEND = "/api/v2/phone/messages"
SHAPE = {"statusCode", "error", "message", "errorCode"}


def send(api: Api, **kwargs: object) -> tuple[int, dict[str, object]]:
    extra: dict[str, str] = kwargs.pop("headers", {})  # type: ignore[assignment]
    headers = {**api.auth(None, "create:phone_messages"), **extra}
    response = api.client.post(SEND, headers=headers, **kwargs)
    return response.status_code, response.json()


def test_unknown_path_is_404_in_auth0s_shape(api: Api) -> None:
    response = api.client.get("/api/v2/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {
        "statusCode": 404,
        "error": "Not Found",
        "message": "Not Found",
        "errorCode": "not_found",
    }


def test_malformed_json_is_400_invalid_body(api: Api) -> None:
    status, body = send(api, content=b'{"to": ', headers={"Content-Type": "application/json"})
    assert status == 400
    assert body == {
        "statusCode": 400,
        "error": "Bad Request",
        "message": "Invalid request payload JSON format",
        "errorCode": "invalid_body",
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"to": 14155552671, "code": "123456"}, "to"),
        ({"to": "+14155552671", "code": ["1"]}, "code"),
        ({"to": "+14155552671", "code": "123456", "channel": "fax"}, "channel"),
        ({"to": "+14155552671", "code": "123456", "surprise": 1}, "surprise"),
        ({"code": "123456"}, "to"),
        ({"to": "+14155552671", "code": "12"}, "code"),
        ({"to": "4155552671", "code": "123456"}, "to"),
    ],
)
def test_bad_input_is_400_naming_the_field(
    api: Api, payload: dict[str, object], field: str
) -> None:
    status, body = send(api, json=payload)
    assert status == 400, body
    assert set(body) == SHAPE
    assert body["errorCode"] == "invalid_body"
    message = str(body["message"])
    assert message.startswith("Payload validation error: ")
    assert field in message
    assert "123456" not in message
    assert "Traceback" not in message


def test_a_body_over_the_limit_is_413_by_its_length(api: Api) -> None:
    huge = b'{"to": "' + b"1" * (MAX_BODY_BYTES + 10) + b'"}'
    status, body = send(api, content=huge, headers={"Content-Type": "application/json"})
    assert status == 413
    assert body["statusCode"] == 413
    assert body["errorCode"] == "payload_too_large"
    assert str(MAX_BODY_BYTES) in str(body["message"])


def test_a_chunked_body_over_the_limit_is_413_while_reading(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"to": "'
        for _ in range(20):
            yield b"1" * (MAX_BODY_BYTES // 16)
        yield b'"}'

    status, body = send(api, content=chunks(), headers={"Content-Type": "application/json"})
    assert status == 413
    assert body["errorCode"] == "payload_too_large"


def test_request_id_is_echoed_made_when_absent_and_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.INFO, logger="runtime.api.access"):
        given = api.client.get("/healthz", headers={"X-Request-Id": "req-42"})
        made = api.client.get("/healthz")
    assert given.headers["x-request-id"] == "req-42"
    assert len(made.headers["x-request-id"]) == 32
    ids = [getattr(r, "request_id", None) for r in caplog.records if r.name.endswith("access")]
    assert "req-42" in ids
    assert made.headers["x-request-id"] in ids
    bogus = api.client.get("/healthz", headers={"X-Request-Id": "a b\tc" * 100})
    assert bogus.headers["x-request-id"] != "a b\tc" * 100  # not copied into logs


def test_an_unexpected_error_is_500_without_a_traceback(api: Api) -> None:
    app = api.client.app

    async def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/api/v2/test-only/boom", boom)  # type: ignore[attr-defined]
    response = api.client.get("/api/v2/test-only/boom")
    assert response.status_code == 500
    assert response.json() == {
        "statusCode": 500,
        "error": "Internal Server Error",
        "message": "Internal error",
        "errorCode": "internal_error",
    }


def test_an_unknown_property_is_said_alike_whichever_layer_finds_it(api: Api) -> None:
    """The body models (phone settings), the log streams' and the usage triggers' own checks:
    one wording for a property none of them knows."""
    from runtime.errors import UNKNOWN_PROPERTY

    headers = api.auth(
        api.tenant_a, "update:guardian_factors", "create:log_streams", "create:usage_triggers"
    )
    stream = {"type": "http", "sink": {"httpEndpoint": "https://a.example/in"}, "bogus": 1}
    trigger = {"period": "hour", "threshold": 1, "url": "https://a.example/x", "bogus": 1}
    for method, path, body in (
        ("PATCH", "/api/v2/phone/settings", {"bogus": 1}),
        ("POST", "/api/v2/log-streams", stream),
        ("POST", "/api/v2/usage-triggers", trigger),
    ):
        answer = api.client.request(method, path, json=body, headers=headers)
        assert answer.status_code == 400, (path, answer.text)
        assert UNKNOWN_PROPERTY in answer.json()["message"], (path, answer.json())
        assert "bogus" in answer.json()["message"]


def test_a_missing_property_is_said_missing_not_wrong(api: Api) -> None:
    """POST {} to log streams or usage triggers: the first required property is named as
    missing, not described as if a wrong value had been given."""
    headers = api.auth(api.tenant_a, "create:log_streams", "create:usage_triggers")
    for path, body, field in (
        ("/api/v2/log-streams", {}, "type"),
        ("/api/v2/log-streams", {"type": "http", "sink": {}}, "sink.httpEndpoint"),
        ("/api/v2/usage-triggers", {}, "period"),
        ("/api/v2/usage-triggers", {"period": "hour", "threshold": 1}, "url"),
    ):
        answer = api.client.post(path, json=body, headers=headers)
        assert answer.status_code == 400, (path, answer.text)
        message = answer.json()["message"]
        assert field in message, (path, message)
        assert "missing (it is required" in message, (path, message)
