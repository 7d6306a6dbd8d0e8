"""POST /api/v2/phone/messages while the database does not answer (a real fault: a TCP proxy
in front of PostgreSQL that goes silent) and the tenant is not held yet: its default_country
cannot be read, so a national number is not judged without it. It is 503 ``store_unavailable``
in Auth0's error shape (docs/service.md, Errors), the detail in the log, never the 400 that
tells the caller to set a default_country the tenant already has. An international number
still gets the pipeline's report (rejected, ``store_unavailable``), and input that is wrong
whatever the tenant's settings is still a 400 naming the field."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.api.app import create_app
from runtime.store.crypto import Keyring
from runtime.store.db import create_engine_for
from runtime.store.service import ServiceStore
from tests.api.conftest import Api, api_settings, create_tenants, new_tenant
from tests.store.faults import FrozenProxy

SEND = "/api/v2/phone/messages"
SHAPE = {"statusCode", "error", "message", "errorCode"}


@dataclass
class Down:
    api: Api
    proxy: FrozenProxy


@pytest.fixture
def down(tmp_path: Path, postgres_url: str) -> Iterator[Down]:
    """The app on PostgreSQL through a proxy, a tenant with default_country US that the app
    has not loaded yet, and then the proxy frozen."""
    proxy = FrozenProxy(("127.0.0.1", 5432))
    try:
        url = proxy.url(postgres_url)
        settings = api_settings(tmp_path / "data", database_url=url, store_timeout=0.5)
        tenant = new_tenant()
        create_tenants(settings, tenant)
        engine = create_engine_for(url, timeout=5)
        try:
            ServiceStore(engine, Keyring.load(None, settings.data_dir)).tenants.update_policy(
                tenant, {"default_country": "US"}
            )
        finally:
            engine.dispose()
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            proxy.freeze()
            yield Down(Api(client, settings, tenant, tenant), proxy)
    finally:
        proxy.close()


def _send(down: Down, **body: str) -> tuple[int, dict[str, object]]:
    api = down.api
    response = api.client.post(
        SEND, json={"code": "123456", **body}, headers=api.auth(None, "create:phone_messages")
    )
    return response.status_code, response.json()


def test_a_national_number_is_store_unavailable_not_a_bad_number(
    down: Down, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="runtime.api"):
        status, body = _send(down, to="(415) 555-2671")
    assert status == 503, body
    assert set(body) == SHAPE
    assert body["errorCode"] == "store_unavailable"
    assert body["message"] == "The service's database is unavailable; try again later."
    assert "default_country" not in str(body)
    logged = [r.getMessage() for r in caplog.records if r.name == "runtime.api"]
    assert any("the database" in line and "did not answer" in line for line in logged), logged


def test_an_international_number_gets_the_pipelines_report(
    down: Down, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route's own lookup of the tenant failed: the delivery is refused with that, not
    after waiting for the database a second time (a request took twice store_timeout)."""
    pipeline = down.api.client.app.state.services.pipeline  # type: ignore[attr-defined]
    lookups: list[str] = []
    real_lookup = pipeline._lookup  # the pipeline's way to the directory's tenants

    async def counted(tenant_id: str) -> object:
        lookups.append(tenant_id)
        return await real_lookup(tenant_id)

    monkeypatch.setattr(pipeline, "_lookup", counted)
    status, body = _send(down, to="+14155552671")
    assert status == 200, body
    assert (body["status"], body["reason"]) == ("rejected", "store_unavailable")
    assert lookups == [down.api.tenant_a]  # one wait for the database, not two


def test_input_wrong_whatever_the_tenant_is_still_400(down: Down) -> None:
    status, body = _send(down, to="+14155552671", code="<12>")
    assert status == 400, body
    assert body["errorCode"] == "invalid_body"
    assert body["message"] == (
        "Payload validation error: 'must be 4 to 12 letters or digits' on property code."
    )


@pytest.mark.parametrize("to", ["+1", "+999 12", "hello", "+1415555267100000000", "0049 30"])
def test_a_number_refused_whatever_the_country_is_still_400(down: Down, to: str) -> None:
    """Only a national number needs the tenant's country: anything else wrong with the
    number is the caller's to fix, database or not."""
    status, body = _send(down, to=to, code="246810")
    assert status == 400, body
    assert body["errorCode"] == "invalid_body"
