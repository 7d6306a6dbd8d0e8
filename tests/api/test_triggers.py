"""/api/v2/actions/triggers and their bindings, and POST /actions/{id}/test running the
action's current code in the real sandbox (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

import httpx

from tests.api.conftest import Api
from tests.api.test_actions import ACTIONS, ALL, assert_error, create

TRIGGERS = "/api/v2/actions/triggers"
SPM = f"{TRIGGERS}/send-phone-message/bindings"
EVENT = {
    "message_options": {
        "action": "enrollment",
        "code": "123456",
        "message_type": "sms",
        "recipient": "+14155552671",
        "text": "123456 is your code",
    },
    "secrets": {},
}


def bind(api: Api, tenant: str, *refs: dict[str, str]) -> httpx.Response:
    response: httpx.Response = api.client.patch(
        SPM,
        json={"bindings": [{"ref": ref} for ref in refs]},
        headers=api.auth(tenant, "update:actions", "read:actions"),
    )
    return response


def test_the_two_phone_triggers(api: Api) -> None:
    response = api.client.get(TRIGGERS, headers=api.auth(None, "read:actions"))
    assert response.status_code == 200
    triggers = {t["id"]: t for t in response.json()["triggers"]}
    assert set(triggers) == {"send-phone-message", "custom-phone-provider"}
    for trigger in triggers.values():
        assert set(trigger) == {
            "id",
            "version",
            "status",
            "runtimes",
            "default_runtime",
            "compatible_triggers",
            "binding_policy",
        }
        assert trigger["default_runtime"] in trigger["runtimes"]
        assert trigger["status"] == "CURRENT"  # Auth0's value (GET /actions/triggers)
        assert trigger["binding_policy"] == "trigger-bound"
    assert triggers["send-phone-message"]["version"] == "v2"
    assert triggers["custom-phone-provider"]["version"] == "v1"
    assert_error(api.client.get(TRIGGERS), 401)
    assert_error(api.client.get(TRIGGERS, headers=api.auth(None, "update:actions")), 403)


def test_bindings_replace_list_page_and_keep(api: Api) -> None:
    tenant = api.tenant_a
    first = create(api, tenant, deploy=True)
    second = create(api, tenant, deploy=True)
    response = bind(
        api,
        tenant,
        {"type": "action_id", "value": first["id"]},
        {"type": "action_name", "value": second["name"]},
    )
    assert response.status_code == 200, response.text
    bound = response.json()["bindings"]
    assert [b["action"]["id"] for b in bound] == [first["id"], second["id"]]
    assert bound[1]["display_name"] == second["name"]

    headers = api.auth(tenant, "read:actions")
    page = api.client.get(SPM, params={"page": 1, "per_page": 1}, headers=headers).json()
    assert (page["total"], page["page"], page["per_page"]) == (2, 1, 1)
    assert [b["action"]["id"] for b in page["bindings"]] == [second["id"]]

    kept = bind(api, tenant, {"type": "binding_id", "value": bound[1]["id"]})
    assert [b["id"] for b in kept.json()["bindings"]] == [bound[1]["id"]]
    assert bind(api, tenant).json() == {"bindings": []}


def test_bad_bindings_name_the_field_and_change_nothing(api: Api) -> None:
    tenant = api.tenant_a
    draft = create(api, tenant)  # never deployed
    custom = create(
        api,
        tenant,
        deploy=True,
        supported_triggers=[{"id": "custom-phone-provider"}],
        code="def on_execute_custom_phone_provider(event, api):\n    return None\n",
    )
    live = create(api, tenant, deploy=True)
    assert bind(api, tenant, {"type": "action_id", "value": live["id"]}).status_code == 200
    headers = api.auth(tenant, "update:actions")
    cases = [
        ({"bindings": [{"ref": {"type": "action_id", "value": draft["id"]}}]}, 400, "deploy"),
        ({"bindings": [{"ref": {"type": "action_id", "value": custom["id"]}}]}, 400, "support"),
        ({"bindings": [{"ref": {"type": "nope", "value": "x"}}]}, 400, "bindings.0.ref.type"),
        ({"bindings": [{"ref": {"type": "action_id"}}]}, 400, "bindings[0].ref.value"),
        ({"bindings": "all"}, 400, "bindings"),
        ({"bindings": [], "extra": 1}, 400, "extra"),
        ({"bindings": [{"ref": {"type": "action_id", "value": str(uuid.uuid4())}}]}, 404, ""),
    ]
    for payload, status, needle in cases:
        assert_error(api.client.patch(SPM, json=payload, headers=headers), status, needle)
    too_many = [{"ref": {"type": "action_id", "value": live["id"]}}] * 21
    assert_error(api.client.patch(SPM, json={"bindings": too_many}, headers=headers), 400, "20")
    now = api.client.get(SPM, headers=api.auth(tenant, "read:actions")).json()["bindings"]
    assert [b["action"]["id"] for b in now] == [live["id"]]
    assert_error(
        api.client.get(f"{TRIGGERS}/post-login/bindings", headers=api.auth(tenant, *ALL)), 404
    )
    assert_error(api.client.patch(SPM, json={"bindings": []}, headers=api.auth(tenant)), 403)
    bind(api, tenant)


def test_bindings_are_per_tenant(api: Api) -> None:
    mine = create(api, api.tenant_a, deploy=True)
    assert bind(api, api.tenant_a, {"type": "action_id", "value": mine["id"]}).status_code == 200
    theirs = api.client.get(SPM, headers=api.auth(api.tenant_b, "read:actions")).json()
    assert mine["id"] not in [b["action"]["id"] for b in theirs["bindings"]]
    # B cannot bind A's action, by id or by name: it does not exist for B
    for ref in (
        {"type": "action_id", "value": mine["id"]},
        {"type": "action_name", "value": mine["name"]},
    ):
        assert_error(bind(api, api.tenant_b, ref), 404)
    still = api.client.get(SPM, headers=api.auth(api.tenant_a, "read:actions")).json()
    assert [b["action"]["id"] for b in still["bindings"]] == [mine["id"]]
    bind(api, api.tenant_a)


# -- POST /actions/{id}/test ------------------------------------------------------------


def test_the_current_code_runs_in_the_sandbox_with_its_secrets(api: Api) -> None:
    action = create(api)  # never deployed: the test runs the current code
    response = api.client.post(
        f"{ACTIONS}/{action['id']}/test",
        json={"payload": EVENT},
        headers=api.auth(None, "create:actions"),
    )
    assert response.status_code == 200, response.text
    payload = response.json()["payload"]
    assert payload["outcome"] == "ok"
    assert payload["result"] == {"key_length": len("s3cret-value")}
    assert payload["logs"] == ["sending to +14155552671"]
    assert payload["errors"] == []
    assert payload["handed_off"] is False
    assert payload["stats"]["duration_ms"] > 0
    assert "s3cret-value" not in response.text


def test_a_failing_action_reports_its_line_and_masks_secrets(api: Api) -> None:
    code = (
        "def on_execute_send_phone_message(event, api):\n"
        "    key = event['secrets']['API_KEY']\n"
        "    raise ValueError('bad key ' + key)\n"
    )
    action = create(api, code=code)
    response = api.client.post(
        f"{ACTIONS}/{action['id']}/test",
        json={"payload": {**EVENT, "secrets": {"EXTRA": "x"}}},
        headers=api.auth(None, "create:actions"),
    )
    assert response.status_code == 200, response.text
    payload = response.json()["payload"]
    assert payload["outcome"] == "runtime_error"
    assert payload["error"] == "ValueError: bad key ******"
    assert any("line 3" in frame for frame in payload["traceback"]), payload["traceback"]
    assert "s3cret-value" not in response.text


def test_a_custom_phone_provider_action_gets_the_converted_event(api: Api) -> None:
    code = (
        "def on_execute_custom_phone_provider(event, api):\n"
        "    n = event['notification']\n"
        "    return [n['delivery_method'], n['message_type'], event['tenant']['id']]\n"
    )
    action = create(
        api, supported_triggers=[{"id": "custom-phone-provider"}], code=code, secrets=[]
    )
    response = api.client.post(
        f"{ACTIONS}/{action['id']}/test",
        json={"payload": {**EVENT, "tenant": {"id": "someone-else"}}},
        headers=api.auth(None, "create:actions"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["payload"]["result"] == ["text", "otp_enroll", api.tenant_a]


def test_a_bad_payload_names_the_field(api: Api) -> None:
    action = create(api)
    url = f"{ACTIONS}/{action['id']}/test"
    headers = api.auth(None, "create:actions")
    bad_recipient = {**EVENT, "message_options": {**EVENT["message_options"], "recipient": 5}}
    cases = [
        ({"payload": bad_recipient}, "payload.message_options.recipient"),
        ({"payload": {"secrets": {}}}, "payload"),
        ({"payload": {**EVENT, "secrets": {"A": 1}}}, "payload.secrets"),
        ({"payload": "x"}, "payload"),
        ({}, "payload"),
    ]
    for body, field in cases:
        assert_error(api.client.post(url, json=body, headers=headers), 400, field)


def test_a_bad_payload_names_each_property_with_its_own_message(api: Api) -> None:
    """docs/service.md, Testing an action: one message per property, in the shape of every
    body that does not validate; not every error joined under the first property's name."""
    action = create(api)
    options = {k: v for k, v in EVENT["message_options"].items() if k != "code"}
    payload = {**EVENT, "message_options": {**options, "recipient": "bad"}}
    response = api.client.post(
        f"{ACTIONS}/{action['id']}/test",
        json={"payload": payload},
        headers=api.auth(None, "create:actions"),
    )
    body = assert_error(response, 400)
    assert (body["errorCode"], body["message"]) == (
        "invalid_body",
        "Payload validation error: 'Field required' on property payload.message_options.code; "
        "'has 'b' at character 1: letters are not read as digits, and extensions cannot be "
        "dialled' on property payload.message_options.recipient.",
    )
    only_recipient = {"message_options": {"recipient": "bad"}}  # and four fields missing
    response = api.client.post(
        f"{ACTIONS}/{action['id']}/test",
        json={"payload": only_recipient},
        headers=api.auth(None, "create:actions"),
    )
    assert assert_error(response, 400)["message"] == (
        "Payload validation error: 'Field required' on property payload.message_options.action; "
        "'Field required' on property payload.message_options.code; 'Field required' on "
        "property payload.message_options.message_type (and 2 more)."
    )
