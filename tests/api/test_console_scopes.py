"""The scopes the web console needs (``CONSOLE_SCOPES``) are those of every call its pages
make: a token made with the command docs/console.md prints opens every page and can use every
button, none of them answering 403. Each call's scope is read from the API's own 403 (a token
with no console scope), so a route whose scope changes makes this test fail, not the page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.api.app import create_app
from runtime.api.scopes import SCOPES
from runtime.api.tokens import SigningKeys
from runtime.api.web_console import CONSOLE_SCOPES
from tests.api.conftest import api_settings, create_tenants

ROOT = Path(__file__).resolve().parents[2]
A = "/api/v2/actions/actions/ACTION"
T = "/api/v2/actions/triggers/send-phone-message"
G = "/api/v2/guardian/factors/phone"
P = "/api/v2/branding/phone/providers"
M = "/api/v2/branding/phone/templates"
CALLS = [  # every (method, path) in runtime/console/static (app.js, pages/*.js)
    ("GET", "/api/v2/actions/triggers"),  # app.js: the sign-in check
    ("GET", "/api/v2/actions/actions"),
    ("POST", "/api/v2/actions/actions"),
    ("GET", A),
    ("PATCH", A),
    ("DELETE", A),
    ("POST", f"{A}/deploy"),
    ("POST", f"{A}/test"),
    ("GET", f"{A}/versions"),
    ("POST", f"{A}/versions/VERSION/deploy"),
    ("GET", f"{T}/sample"),
    ("GET", f"{T}/bindings"),
    ("PATCH", f"{T}/bindings"),
    ("GET", f"{G}/message-types"),
    ("PUT", f"{G}/message-types"),
    ("GET", f"{G}/selected-provider"),
    ("PUT", f"{G}/selected-provider"),
    ("GET", f"{G}/providers/twilio"),
    ("PUT", f"{G}/providers/twilio"),
    ("GET", P),
    ("POST", P),
    ("PATCH", f"{P}/PROVIDER"),
    ("POST", f"{P}/PROVIDER/try"),
    ("GET", "/api/v2/phone/settings"),
    ("PATCH", "/api/v2/phone/settings"),
    ("POST", "/api/v2/phone/messages"),
    ("GET", M),
    ("POST", M),
    ("PATCH", f"{M}/TEMPLATE"),
    ("PATCH", f"{M}/TEMPLATE/reset"),
    ("POST", f"{M}/preview"),
    ("GET", "/api/v2/logs"),
    ("GET", "/api/v2/phone/outbox"),
]
EXPECTED = re.compile(r"expected any of: ([\w:, ]+)")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    data_dir: Path = tmp_path_factory.mktemp("console-scopes") / "data"
    settings = api_settings(data_dir)
    create_tenants(settings, "console-scopes")
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        outsider = sorted(set(SCOPES) - set(CONSOLE_SCOPES))[:1] or ["read:log_streams"]
        token = SigningKeys.from_settings(settings).issue(
            tenant="console-scopes", scopes=outsider, ttl=600
        )
        yield c, token


def test_the_console_scopes_are_exactly_those_its_calls_need(
    client: tuple[TestClient, str],
) -> None:
    c, token = client
    needs: dict[str, set[str]] = {}
    for method, path in CALLS:
        response = c.request(method, path, headers={"Authorization": f"Bearer {token}"}, json={})
        assert response.status_code == 403, (method, path, response.status_code, response.text)
        found = EXPECTED.search(response.json()["message"])
        assert found, response.text
        needs[f"{method} {path}"] = {s.strip() for s in found.group(1).split(",")}
    uncovered = [call for call, scopes in needs.items() if not scopes & set(CONSOLE_SCOPES)]
    assert not uncovered, f"no console scope lets the console call {uncovered}"
    unused = set(CONSOLE_SCOPES) - set().union(*needs.values())
    assert not unused, f"no console call needs {unused}"


def test_console_scopes_are_known_and_documented() -> None:
    assert set(CONSOLE_SCOPES) <= set(SCOPES)
    doc = (ROOT / "docs" / "console.md").read_text(encoding="utf-8")
    command = f'phone-actions token create --tenant ID --scope "{" ".join(CONSOLE_SCOPES)}"'
    assert command in doc.replace("\\\n", "").replace("\n  ", " ")
