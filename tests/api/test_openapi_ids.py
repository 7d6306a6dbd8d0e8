"""The OpenAPI document names each operation once: a repeated operationId makes FastAPI warn
when it builds the document, and clients generated from it clash (Vonage's receipt answers
GET and POST on one path)."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

from runtime.api.app import OPENAPI_URL, create_app
from tests.api.conftest import Api, api_settings

VONAGE = "/api/v2/receipts/vonage/{tenant}/{delivery_id}"


def test_every_operation_id_is_unique_and_the_document_builds_without_a_warning(
    tmp_path: Path,
) -> None:
    # a fresh app: the module's app keeps the document it built first (and warned once then)
    app = create_app(api_settings(tmp_path / "data"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        document = app.openapi()
    ids = Counter(
        operation["operationId"]
        for operations in document["paths"].values()
        for operation in operations.values()
    )
    assert [name for name, count in ids.items() if count > 1] == []
    assert sorted(document["paths"][VONAGE]) == ["get", "post"]


def test_the_served_document_names_vonage_get_and_post_apart(api: Api) -> None:
    operations = api.client.get(OPENAPI_URL).json()["paths"][VONAGE]
    assert operations["get"]["operationId"] != operations["post"]["operationId"]
