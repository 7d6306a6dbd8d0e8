"""Every answer under ``/console`` carries the console's security headers: the page, its
files, and also a 404, a 405 or a redirect (built by the app's error handlers, which once
left them out). A path that climbs out of the static folder finds nothing. The app on SQLite
only: the headers do not depend on the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.api.app import create_app
from runtime.api.web_console import CSP
from tests.api.conftest import api_settings

PATHS = [
    ("GET", "/console", 200),
    ("GET", "/console/", 200),
    ("GET", "/console/static/app.js", 200),
    ("GET", "/console/static/lib/chart.js", 200),
    ("GET", "/console/static/no-such.js", 404),
    ("GET", "/console/static/", 404),
    ("GET", "/console/static", 307),
    ("GET", "/console/anything", 404),
    ("POST", "/console", 405),
    ("GET", "/console/static/..%2f..%2fapi%2fweb_console.py", 404),
    ("GET", "/console/static/%2e%2e/%2e%2e/api/web_console.py", 404),
    ("GET", "/console/static/lib/..%2f..%2f..%2f__init__.py", 404),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir: Path = tmp_path_factory.mktemp("console-headers") / "data"
    with TestClient(create_app(api_settings(data_dir)), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(("method", "path", "status"), PATHS)
def test_every_console_answer_has_the_security_headers(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path, follow_redirects=False)
    assert response.status_code == status, response.text[:200]
    headers = response.headers
    assert headers["content-security-policy"] == CSP
    assert "frame-ancestors 'none'" in CSP
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-cache"
    assert "__future__" not in response.text  # no Python source climbed out of static/


def test_the_api_keeps_its_own_headers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert "content-security-policy" not in response.headers
