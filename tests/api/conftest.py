"""API fixtures: the real app (create_app, its lifespan, the real ServiceStore) on SQLite and
on PostgreSQL, two tenants of this module only, and tokens for them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.api.app import create_app
from runtime.api.tokens import SigningKeys
from runtime.settings import Settings
from runtime.store.crypto import Keyring
from runtime.store.db import create_engine_for, migrate
from runtime.store.service import ServiceStore


def api_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "tenants_file": data_dir / "unused-tenants.toml",
        "attempt_timeout": 2.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def database_url_for(backend: str, data_dir: Path, request: pytest.FixtureRequest) -> str:
    """SQLite in ``data_dir``, or the test module's own PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{data_dir / 'phone-actions.sqlite3'}"
    return str(request.getfixturevalue("postgres_database"))


def create_tenants(settings: Settings, *ids: str) -> None:
    """Create tenants before the app starts (its directory then knows them at once)."""
    engine = create_engine_for(settings.resolved_database_url, timeout=5)
    try:
        migrate(engine)
        master = settings.master_key.get_secret_value() if settings.master_key else None
        store = ServiceStore(engine, Keyring.load(master, settings.data_dir))
        for tenant in ids:
            store.tenants.create(tenant)
    finally:
        engine.dispose()


def assert_payload_errors(
    api: Api,
    method: str,
    path: str,
    headers: dict[str, str],
    cases: list[tuple[dict[str, Any], str]],
) -> None:
    """Each body answers 400 ``invalid_body`` with ``Payload validation error: <said>`` (the
    documented shape), naming the property but never repeating the values sent."""
    for body, said in cases:
        response = api.client.request(method, path, json=body, headers=headers)
        assert response.status_code == 400, response.text
        answer = response.json()
        assert (answer["errorCode"], answer["message"]) == (
            "invalid_body",
            f"Payload validation error: {said}",
        )
        assert "Value error" not in answer["message"]
        for value in body.values():
            for each in value if isinstance(value, list) else [value]:
                if isinstance(each, str):
                    assert each not in answer["message"], (each, answer)


def new_tenant() -> str:
    """A tenant id of this run only (a module's tests share its PostgreSQL database)."""
    return f"api-{uuid.uuid4().hex[:12]}"


@dataclass
class Api:
    client: TestClient
    settings: Settings
    tenant_a: str
    tenant_b: str

    def token(self, tenant: str | None = None, *scopes: str, ttl: int = 3600) -> str:
        keys = SigningKeys.from_settings(self.settings)
        return keys.issue(tenant=tenant or self.tenant_a, scopes=list(scopes), ttl=ttl)

    def auth(self, tenant: str | None = None, *scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, *scopes)}"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One running app per backend and test module (starting one costs the plugins and the
    pipeline), with two tenants of its own."""
    data_dir = tmp_path_factory.mktemp("api") / "data"
    database_url = database_url_for(request.param, data_dir, request)
    settings = api_settings(data_dir, database_url=database_url)
    tenant_a, tenant_b = new_tenant(), new_tenant()
    create_tenants(settings, tenant_a, tenant_b)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client, settings, tenant_a, tenant_b)


@pytest.fixture(scope="module")
def store(api: Api) -> Iterator[ServiceStore]:
    """The app's own store, opened a second time: tests set up and check rows through it."""
    settings = api.settings
    master = settings.master_key.get_secret_value() if settings.master_key else None
    engine = create_engine_for(settings.resolved_database_url, timeout=5)
    yield ServiceStore(engine, Keyring.load(master, settings.data_dir))
    engine.dispose()


def point_cli_at(api: Api, monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    """The ``actions`` commands talk to ``api``'s app in process, with ``token`` (the URL is
    a placeholder: the in-process client ignores it)."""
    import runtime.cli_actions

    class Client:
        def __init__(self, url: str, given: str) -> None:
            assert url == "http://127.0.0.1:9"
            self.token = given

        def __enter__(self) -> Client:
            return self

        def __exit__(self, *_exc: object) -> None:
            return None

        def request(self, method: str, path: str, **kwargs: Any) -> Any:
            headers = {"Authorization": f"Bearer {self.token}"}
            return api.client.request(method, path, headers=headers, **kwargs)

    monkeypatch.setattr(runtime.cli_actions, "api_client", Client)
    monkeypatch.setenv("PHONE_ACTIONS_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PHONE_ACTIONS_API_TOKEN", token)
