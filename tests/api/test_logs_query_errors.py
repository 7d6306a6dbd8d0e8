"""GET /api/v2/logs: a query string it cannot use is 400 ``invalid_query_string`` (the code
docs/service.md's Errors table gives a query that does not validate), one line naming the
parameter, never ``invalid_body``: the request has no body."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

LOGS = "/api/v2/logs"
SHAPE = {"statusCode", "error", "message", "errorCode"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": "type:("}, "q"),
        ({"q": "password:x"}, "q"),
        ({"q": "type:x AND"}, "q"),
        ({"q": "x" * 10_000}, "q"),
        ({"page": 20, "per_page": 100}, "page"),
        ({"sort": "client_name:1"}, "sort"),  # searchable at Auth0, not a column here
        ({"sort": "date"}, "sort"),
        ({"sort": "date:2"}, "sort"),
    ],
)
def test_a_bad_query_string_is_invalid_query_string(
    api: Api, params: dict[str, object], field: str
) -> None:
    headers = api.auth(api.tenant_a, "read:logs")
    response = api.client.get(LOGS, params=params, headers=headers)
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == SHAPE
    assert body["errorCode"] == "invalid_query_string"
    assert body["message"].startswith(f"{field}: ")
    assert "\n" not in body["message"]


def test_fastapis_own_query_checks_give_the_same_code(api: Api) -> None:
    """What the route checks itself answers as FastAPI's own query validation does."""
    headers = api.auth(api.tenant_a, "read:logs")
    response = api.client.get(LOGS, params={"per_page": 0}, headers=headers)
    assert response.status_code == 400
    assert response.json()["errorCode"] == "invalid_query_string"
    assert response.json()["message"] == (
        "Query validation error: 'Input should be greater than or equal to 1' on property per_page."
    )
    checkpoint = api.client.get(LOGS, params={"take": 0}, headers=headers)
    assert checkpoint.status_code == 400
    assert checkpoint.json()["errorCode"] == "invalid_query_string"
    assert checkpoint.json()["message"].endswith("on property take.")
