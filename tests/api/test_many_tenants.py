"""A service whose database holds 1,000 tenants starts without loading any of them, answers
/readyz, and the first message of a tenant loads that tenant only (docs/service.md, "How
tenants are loaded"). On SQLite and on the module's own PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.api.app import create_app
from runtime.api.tokens import SigningKeys
from runtime.store.db import create_engine_for, migrate
from tests.api.conftest import api_settings, create_tenants, database_url_for
from tests.store.service.test_directory_scale import MANY, add_tenants


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_thousand_tenants_start_at_once_and_a_message_loads_only_its_own(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data_dir = tmp_path / "data"
    settings = api_settings(data_dir, database_url=database_url_for(backend, data_dir, request))
    create_tenants(settings)  # migrated, and the node's master key made
    engine = create_engine_for(settings.resolved_database_url, timeout=5)
    try:
        migrate(engine)
        many = add_tenants(engine, MANY)
    finally:
        engine.dispose()
    chosen = many[7]
    token = SigningKeys.from_settings(settings).issue(
        tenant=chosen, scopes=["create:phone_messages"], ttl=600
    )
    with TestClient(create_app(settings)) as client:
        directory = client.app.state.services.directory  # type: ignore[attr-defined]
        assert (directory.ids(), directory.loaded) == ([], 0)  # started: nothing loaded
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) == {"database", "migrations", "sandbox"}
        assert directory.loaded == 0
        sent = client.post(
            "/api/v2/phone/messages",
            json={"to": "+14155552671", "code": "246810"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["status"] == "stored"
        assert directory.ids() == [chosen]
        assert directory.loaded == 1
