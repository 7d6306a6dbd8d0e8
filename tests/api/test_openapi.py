"""The OpenAPI document and its page: the page loads Swagger UI from this service (no CDN),
and every asset it names is served."""

from __future__ import annotations

import re

from runtime.api.app import DOCS_URL, OPENAPI_URL
from tests.api.conftest import Api


def test_openapi_document_lists_the_core_paths_and_the_bearer_scheme(api: Api) -> None:
    document = api.client.get(OPENAPI_URL).json()
    assert "/api/v2/phone/messages" in document["paths"]
    assert "/readyz" in document["paths"]
    schemes = document["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())


def test_docs_page_works_offline(api: Api) -> None:
    page = api.client.get(DOCS_URL)
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    urls += re.findall(r"""url: *["']([^"']+)["']""", page.text)
    assert urls
    assert not [u for u in urls if "//" in u], "the docs page must not load from elsewhere"
    for url in urls:
        assert api.client.get(url).status_code == 200, url
    assert OPENAPI_URL in urls


def test_every_route_that_requires_a_scope_names_the_bearer_scheme(api: Api) -> None:
    """The scope check reads the header itself (no FastAPI security dependency): the document
    must still say which operations need a token, and only those."""
    document = api.client.get(OPENAPI_URL).json()
    paths = document["paths"]
    assert paths["/api/v2/phone/messages"]["post"]["security"] == [{"HTTPBearer": []}]
    assert paths["/api/v2/actions/actions/{id}"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in paths["/healthz"]["get"]
    assert "security" not in paths["/api/v2/receipts/twilio/{tenant}/{delivery_id}"]["post"]
    unsecured = [
        f"{method} {path}"
        for path, operations in paths.items()
        for method, operation in operations.items()
        if path.startswith("/api/v2/")
        and not path.startswith("/api/v2/receipts/")
        and "security" not in operation
    ]
    assert unsecured == []
