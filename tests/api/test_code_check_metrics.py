"""The Verify API's code checks in /metrics (phone_actions_code_checks_total): the count the
pumping alert of docs/operations.md sets against the sends. Through the real app on SQLite; the
outbox (the default sender) keeps the code the user would receive."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from plugins.outbox import OutboxProvider
from runtime.api.app import create_app
from runtime.api.tokens import SigningKeys
from runtime.settings import Settings
from tests.api.conftest import api_settings, create_tenants, new_tenant

METRICS_TOKEN = "m" * 24
PHONE = "+14155552671"
USER = "auth0|pumped"
ENROLL = "/api/v2/phone/enrollments"
SCOPES = ["create:phone_enrollments", "create:phone_challenges"]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, str, Settings]]:
    settings = api_settings(tmp_path / "data", metrics_token=METRICS_TOKEN)
    tenant = new_tenant()
    create_tenants(settings, tenant)
    token = SigningKeys.from_settings(settings).issue(tenant=tenant, scopes=SCOPES, ttl=3600)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client, tenant, settings


def _code(settings: Settings, tenant: str) -> str:
    messages = OutboxProvider(settings.resolved_database_url).messages(tenant)
    found = re.search(r"\b(\d{6})\b", messages[-1].text)
    assert found, messages[-1].text
    return found.group(1)


def _checks(client: TestClient) -> dict[tuple[tuple[str, str], ...], float]:
    """The code-check samples of /metrics, by their sorted labels."""
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200, answer.text
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
        if s.name == "phone_actions_code_checks_total"
    }


def _post(client: TestClient, url: str, body: dict[str, Any], status: int) -> dict[str, Any]:
    response = client.post(url, json=body)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_wrong_code_and_a_confirmed_enrollment_are_counted_by_tenant_flow_outcome(
    app: tuple[TestClient, str, Settings],
) -> None:
    client, tenant, settings = app
    body = {"user_id": USER, "phone_number": PHONE, "channel": "sms"}
    made = _post(client, ENROLL, body, 201)
    code = _code(settings, tenant)
    confirm = f"{ENROLL}/{made['id']}/confirm"
    wrong = "000000" if code != "000000" else "111111"
    assert _post(client, confirm, {"code": wrong}, 403)["errorCode"] == "invalid_code"
    assert _post(client, confirm, {"code": code}, 200)["status"] == "confirmed"

    checks = _checks(client)
    mine = {labels: value for labels, value in checks.items() if ("tenant", tenant) in labels}
    assert mine == {
        (("flow", "enrollment"), ("outcome", "failed"), ("tenant", tenant)): 1.0,
        (("flow", "enrollment"), ("outcome", "succeeded"), ("tenant", tenant)): 1.0,
    }
    for labels in checks:  # only these three labels, never a user, a number, a code or an id
        assert {name for name, _ in labels} == {"flow", "outcome", "tenant"}
        values = {value for _, value in labels}
        assert not values & {USER, PHONE, PHONE.lstrip("+"), code, wrong, made["id"]}
