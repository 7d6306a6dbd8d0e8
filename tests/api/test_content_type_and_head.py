"""A JSON body sent without ``Content-Type: application/json`` (``curl -d``) is told so, in
Auth0's error shape; and HEAD is answered where GET is, for load-balancer probes and link
checkers (``/healthz``, the console)."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import Api

SEND = "/api/v2/phone/messages"
BODY = json.dumps({"to": "+14155552671", "code": "123456"}).encode()


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",  # curl -d's
        "text/plain",
    ],
)
def test_a_json_body_with_another_content_type_says_which_it_must_be(
    api: Api, content_type: str
) -> None:
    headers = {**api.auth(None, "create:phone_messages"), "Content-Type": content_type}
    response = api.client.post(SEND, content=BODY, headers=headers)
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": 400,
        "error": "Bad Request",
        "message": f"Content-Type must be application/json, not {content_type}",
        "errorCode": "invalid_body",
    }


def test_a_json_body_with_the_right_content_type_is_not_told_about_it(api: Api) -> None:
    headers = {**api.auth(None, "create:phone_messages"), "Content-Type": "application/json"}
    response = api.client.post(SEND, content=b"[1, 2]", headers=headers)
    assert response.status_code == 400
    assert "Content-Type" not in response.json()["message"]


@pytest.mark.parametrize("path", ["/healthz", "/console", "/console/"])
def test_head_is_answered_where_get_is(api: Api, path: str) -> None:
    got = api.client.get(path)
    head = api.client.head(path)
    assert got.status_code == 200
    assert head.status_code == 200, head.text
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
