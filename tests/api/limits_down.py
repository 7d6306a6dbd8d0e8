"""An app whose rate limits live in a Redis that is not there (a unix socket path nobody
listens on: every connection is refused for real), policy ``closed``: every request that a
rate rule applies to is refused ``limits_unavailable``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient

from runtime.api.app import create_app
from tests.api.conftest import Api, api_settings, create_tenants, new_tenant


@contextmanager
def api_without_redis(tmp_path: Path) -> Iterator[Api]:
    data_dir = tmp_path / "data"
    settings = api_settings(
        data_dir,
        redis_url=f"unix://{tmp_path / 'no-redis.sock'}",
        redis_timeout=1.0,
        limits_on_redis_error="closed",
    )
    tenant_a, tenant_b = new_tenant(), new_tenant()
    create_tenants(settings, tenant_a, tenant_b)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client, settings, tenant_a, tenant_b)
