"""GET /api/v2/logs as Auth0 documents it (retrieve-log-events-using-mgmt-api): checkpoint
pages carry a ``Link`` header whose ``next`` relation is the request to make next (the same
request once the log is read to its end), and ignore every parameter but ``from`` and
``take``; search pages take ``fields``/``include_fields`` and ``sort=field:1|-1``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi.testclient import TestClient

from runtime.api.app import create_app
from runtime.api.tokens import SigningKeys
from tests.api.conftest import Api, api_settings, create_tenants, new_tenant

LOGS = "/api/v2/logs"
SEND = "/api/v2/phone/messages"
TYPES = "/api/v2/guardian/factors/phone/message-types"
LINK = re.compile(r'^<([^>]+)>; rel="next"$')


def _catch_up(api: Api) -> None:
    pipeline = api.client.app.state.services.pipeline  # type: ignore[attr-defined]
    api.client.portal.call(pipeline.stored_log.ingester.catch_up)  # type: ignore[union-attr]


def _send_sms(api: Api, tenant: str, *phones: str) -> None:
    headers = api.auth(tenant, "update:guardian_factors")
    answer = api.client.put(TYPES, json={"message_types": ["sms", "voice"]}, headers=headers)
    assert answer.status_code == 200, answer.text
    for phone in phones:
        body = {"to": phone, "code": "246810", "channel": "sms"}
        sent = api.client.post(SEND, json=body, headers=api.auth(tenant, "create:phone_messages"))
        assert sent.status_code == 200, sent.text
    _catch_up(api)


def _get(api: Api, tenant: str, url: str, **params: Any) -> httpx.Response:
    response: httpx.Response = api.client.get(
        url, params=params or None, headers=api.auth(tenant, "read:logs")
    )
    assert response.status_code == 200, response.text
    return response


def _next(response: httpx.Response) -> str:
    found = LINK.match(response.headers.get("link", ""))
    assert found, f"no next relation: {response.headers.get('link')!r}"
    return found.group(1)


def test_checkpoint_pages_link_to_the_next_one_until_the_end(api: Api) -> None:
    tenant = api.tenant_a
    _send_sms(api, tenant, *(f"+1415555031{n}" for n in range(5)))
    everything = _get(api, tenant, LOGS, per_page=100, sort="date:1").json()
    assert len(everything) == 5

    first = _get(api, tenant, LOGS, take=2)
    assert [e["log_id"] for e in first.json()] == [e["log_id"] for e in everything[:2]]
    url = _next(first)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "testserver", LOGS)
    assert parse_qs(parts.query) == {"from": [everything[1]["log_id"]], "take": ["2"]}

    walked, response = list(first.json()), first
    for _ in range(10):  # following the links, as Auth0 says a reader should
        response = _get(api, tenant, _next(response))
        if not response.json():
            break
        walked += response.json()
    assert walked == everything
    # read to its end: an empty page, and the next relation is the very request made
    assert response.json() == []
    assert _next(response) == str(response.request.url)
    _send_sms(api, tenant, "+14155550319")
    newer = _get(api, tenant, _next(response)).json()
    assert [e["user_name"] for e in newer] == ["+14155550319"]


def test_the_next_link_is_on_public_base_url_when_set(tmp_path: Path) -> None:
    """Behind a proxy the address the request came to is not the one readers use."""
    settings = api_settings(tmp_path / "data", public_base_url="https://phone.example.com/pa")
    tenant = new_tenant()
    create_tenants(settings, tenant)
    token = SigningKeys.from_settings(settings).issue(tenant=tenant, scopes=["read:logs"], ttl=60)
    with TestClient(create_app(settings)) as client:
        empty = client.get(
            LOGS, params={"take": 5, "q": "x"}, headers={"Authorization": f"Bearer {token}"}
        )
    assert empty.status_code == 200, empty.text
    assert empty.json() == []
    assert _next(empty) == "https://phone.example.com/pa/api/v2/logs?take=5&q=x"


def test_checkpoint_paging_ignores_every_other_parameter(api: Api) -> None:
    tenant = api.tenant_a
    _send_sms(api, tenant, "+14155550320", "+14155550321")
    everything = _get(api, tenant, LOGS, per_page=100, sort="date:1").json()
    start = everything[0]["log_id"]
    plain = _get(api, tenant, LOGS, **{"from": start, "take": 100})
    ignored = {
        "q": "type:(",  # not a query: refused in search mode
        "page": 99,
        "per_page": 500,
        "sort": "nope",
        "include_totals": "maybe",
        "fields": "type",
        "include_fields": "false",
    }
    noisy = _get(api, tenant, LOGS, **{"from": start, "take": 100}, **ignored)
    assert noisy.json() == plain.json() == everything[1:]
    assert set(parse_qs(urlsplit(_next(noisy)).query)) == {"from", "take"}


def test_search_pages_keep_or_drop_fields(api: Api) -> None:
    tenant = api.tenant_b
    _send_sms(api, tenant, "+14155550330", "+14155550331")
    whole = _get(api, tenant, LOGS, q='user_name:"+14155550330"').json()
    assert len(whole) == 1
    assert {"type", "log_id", "date", "details"} <= set(whole[0])

    kept = _get(api, tenant, LOGS, q='user_name:"+14155550330"', fields="log_id, type").json()
    assert kept == [{"log_id": whole[0]["log_id"], "type": whole[0]["type"]}]
    dropped = _get(
        api, tenant, LOGS, q='user_name:"+14155550330"', fields="details", include_fields="false"
    ).json()
    assert dropped == [{k: v for k, v in whole[0].items() if k != "details"}]
    totals = _get(api, tenant, LOGS, fields="log_id", include_totals="true", per_page=1).json()
    assert set(totals) == {"start", "limit", "length", "total", "logs"}
    assert [set(e) for e in totals["logs"]] == [{"log_id"}]
    assert _get(api, tenant, LOGS, q='user_name:"+14155550330"', fields=",").json() == whole


def test_search_pages_sort_by_the_fields_auth0_allows(api: Api) -> None:
    tenant = api.tenant_b
    _send_sms(api, tenant, "+14155550342", "+14155550340", "+14155550341")
    names = ["+14155550340", "+14155550341", "+14155550342"]
    q = "user_name:+1415555034*"
    up = _get(api, tenant, LOGS, q=q, sort="user_name:1").json()
    assert [e["user_name"] for e in up] == names
    down = _get(api, tenant, LOGS, q=q, sort="user_name:-1").json()
    assert [e["user_name"] for e in down] == names[::-1]
    ids = [e["log_id"] for e in _get(api, tenant, LOGS, q=q, sort="log_id:1").json()]
    assert ids == sorted(ids)
    oldest = _get(api, tenant, LOGS, q=q, sort="date:1").json()
    assert [e["user_name"] for e in oldest] == ["+14155550342", "+14155550340", "+14155550341"]
