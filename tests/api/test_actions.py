"""/api/v2/actions/actions on the real app (SQLite and PostgreSQL): create, read, list, change,
delete, deploy, versions and rollback; code compiled in the sandbox before anything is stored;
Auth0's limits naming the field; 401/403/404; and one tenant never reaching another's."""

from __future__ import annotations

import uuid
from typing import Any

from runtime.store.crypto import Keyring
from runtime.store.db import create_engine_for
from runtime.store.service import ServiceStore
from tests.api.conftest import Api

ACTIONS = "/api/v2/actions/actions"
ALL = ("read:actions", "create:actions", "update:actions", "delete:actions")

CODE = (
    "def on_execute_send_phone_message(event, api):\n"
    "    print('sending to ' + event['message_options']['recipient'])\n"
    "    return {'key_length': len(event['secrets']['API_KEY'])}\n"
)
BROKEN = "def on_execute_send_phone_message(event, api):\n    return 1\n\ndef helper(:\n    pass\n"


def name() -> str:
    return f"act-{uuid.uuid4().hex[:10]}"


def body(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": name(),
        "supported_triggers": [{"id": "send-phone-message", "version": "v2"}],
        "code": CODE,
        "runtime": "python3.11",
        "secrets": [{"name": "API_KEY", "value": "s3cret-value"}],
    }
    data.update(over)
    return data


def create(api: Api, tenant: str | None = None, **over: Any) -> dict[str, Any]:
    response = api.client.post(ACTIONS, json=body(**over), headers=api.auth(tenant, *ALL))
    assert response.status_code == 201, response.text
    return dict(response.json())


def names_of(api: Api, tenant: str, wanted: str) -> list[str]:
    response = api.client.get(
        ACTIONS, params={"actionName": wanted}, headers=api.auth(tenant, "read:actions")
    )
    assert response.status_code == 200, response.text
    return [a["name"] for a in response.json()["actions"]]


def assert_error(response: Any, status: int, *needles: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = dict(response.json())
    assert set(error) == {"statusCode", "error", "message", "errorCode"}
    assert error["statusCode"] == status
    for needle in needles:
        assert needle in error["message"], error["message"]
    return error


# -- success ---------------------------------------------------------------------------------


def test_create_read_list_change_delete(api: Api) -> None:
    headers = api.auth(api.tenant_a, *ALL)
    action = create(api)
    assert action["supported_triggers"] == [{"id": "send-phone-message", "version": "v2"}]
    assert action["code"] == CODE
    assert action["all_changes_deployed"] is False
    assert "deployed_version" not in action
    assert [s["name"] for s in action["secrets"]] == ["API_KEY"]
    assert "s3cret-value" not in str(action)

    got = api.client.get(f"{ACTIONS}/{action['id']}", headers=headers).json()
    assert (got["id"], got["name"]) == (action["id"], action["name"])

    page = api.client.get(ACTIONS, params={"per_page": 100}, headers=headers).json()
    assert set(page) == {"actions", "total", "page", "per_page"}
    assert action["id"] in [a["id"] for a in page["actions"]]
    assert (
        api.client.get(
            ACTIONS,
            params={"triggerId": "custom-phone-provider", "actionName": action["name"]},
            headers=headers,
        ).json()["actions"]
        == []
    )
    assert api.client.get(ACTIONS, params={"installed": "true"}, headers=headers).json() == {
        "actions": [],
        "total": 0,
        "page": 0,
        "per_page": 50,
    }

    renamed = name()
    changed = api.client.patch(
        f"{ACTIONS}/{action['id']}",
        json={"name": renamed, "secrets": [{"name": "API_KEY"}, {"name": "OTHER", "value": "x"}]},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == renamed
    assert [s["name"] for s in changed.json()["secrets"]] == ["API_KEY", "OTHER"]

    gone = api.client.delete(f"{ACTIONS}/{action['id']}", headers=headers)
    assert gone.status_code == 204
    assert_error(api.client.get(f"{ACTIONS}/{action['id']}", headers=headers), 404)


def test_create_without_code_gets_a_handler_that_does_nothing(api: Api) -> None:
    action = create(
        api, code=None, supported_triggers=[{"id": "custom-phone-provider"}], secrets=[]
    )
    assert "def on_execute_custom_phone_provider(event, api):" in action["code"]
    assert action["supported_triggers"] == [{"id": "custom-phone-provider", "version": "v1"}]


def test_deploy_versions_and_rollback(api: Api) -> None:
    headers = api.auth(api.tenant_a, *ALL)
    action = create(api)
    url = f"{ACTIONS}/{action['id']}"
    first = api.client.post(f"{url}/deploy", headers=headers)
    assert first.status_code == 202, first.text
    v1 = first.json()
    assert (v1["number"], v1["deployed"], v1["code"]) == (1, True, CODE)
    assert v1["secrets"] == [{"name": "API_KEY", "updated_at": v1["secrets"][0]["updated_at"]}]

    new_code = CODE.replace("sending to", "now sending to")
    assert api.client.patch(url, json={"code": new_code}, headers=headers).status_code == 200
    assert api.client.get(url, headers=headers).json()["all_changes_deployed"] is False
    v2 = api.client.post(f"{url}/deploy", headers=headers).json()
    assert (v2["number"], v2["code"]) == (2, new_code)
    assert api.client.get(url, headers=headers).json()["deployed_version"]["id"] == v2["id"]

    listed = api.client.get(f"{url}/versions", headers=headers).json()
    assert [v["number"] for v in listed["versions"]] == [2, 1]
    assert (listed["total"], listed["per_page"]) == (2, 50)
    assert [v["deployed"] for v in listed["versions"]] == [True, False]
    one = api.client.get(f"{url}/versions/{v1['id']}", headers=headers)
    assert (one.status_code, one.json()["code"]) == (200, CODE)

    back = api.client.post(f"{url}/versions/{v1['id']}/deploy", headers=headers)
    assert back.status_code == 202, back.text
    assert (back.json()["number"], back.json()["code"], back.json()["deployed"]) == (3, CODE, True)
    assert api.client.get(url, headers=headers).json()["code"] == CODE
    paged = api.client.get(f"{url}/versions", params={"page": 1, "per_page": 2}, headers=headers)
    assert [v["number"] for v in paged.json()["versions"]] == [1]


def test_create_with_deploy_true_deploys(api: Api) -> None:
    action = create(api, deploy=True)
    assert action["deployed_version"]["number"] == 1
    assert action["all_changes_deployed"] is True


# -- the sandbox compiles before anything is stored ------------------------------------------


def test_a_syntax_error_is_refused_with_its_line_and_nothing_stored(api: Api) -> None:
    headers = api.auth(api.tenant_a, *ALL)
    wanted = name()
    response = api.client.post(ACTIONS, json=body(name=wanted, code=BROKEN), headers=headers)
    error = assert_error(response, 400, "line 4", "SyntaxError", "property code")
    assert error["errorCode"] == "invalid_code"
    assert names_of(api, api.tenant_a, wanted) == []


def test_a_change_to_broken_code_is_refused_and_the_old_code_kept(api: Api) -> None:
    headers = api.auth(api.tenant_a, *ALL)
    action = create(api)
    url = f"{ACTIONS}/{action['id']}"
    refused = api.client.patch(url, json={"code": "X = CODE._private\n" + CODE}, headers=headers)
    assert_error(refused, 400, "line 1", "property code")
    # the handler of the other trigger is missing: changing only the trigger is checked too
    other = api.client.patch(
        url, json={"supported_triggers": [{"id": "custom-phone-provider"}]}, headers=headers
    )
    assert_error(other, 400, "on_execute_custom_phone_provider", "property code")
    assert api.client.get(url, headers=headers).json()["code"] == CODE


def test_policy_violations_are_refused_with_every_line(api: Api) -> None:
    code = CODE + "\ndef a(x):\n    return x._secret\n\nclass B:\n    pass\n"
    response = api.client.post(ACTIONS, json=body(code=code), headers=api.auth(None, *ALL))
    assert_error(response, 400, "line 6", "line 8")


# -- bad input: 400 naming the field, nothing stored -------------------------------------


def test_wrong_types_and_unknown_fields_name_the_property(api: Api) -> None:
    headers = api.auth(api.tenant_a, *ALL)
    cases = [
        (body(name=123), "name"),
        (body(supported_triggers="send-phone-message"), "supported_triggers"),
        (body(secrets=[{"name": "A", "value": 5}]), "secrets[0].value"),
        ({**body(), "modules": []}, "modules"),
        (body(supported_triggers=[{"id": "post-login"}]), "supported_triggers.0.id"),
        (body(runtime="node22"), "runtime"),
    ]
    for payload, field in cases:
        response = api.client.post(ACTIONS, json=payload, headers=headers)
        assert_error(response, 400, field)
        if isinstance(payload["name"], str):
            assert names_of(api, api.tenant_a, payload["name"]) == []
    bad_json = api.client.post(
        ACTIONS, content=b"{not json", headers={**headers, "content-type": "application/json"}
    )
    assert_error(bad_json, 400, "JSON")
    bad_query = api.client.get(ACTIONS, params={"per_page": 0}, headers=headers)
    assert_error(bad_query, 400, "per_page")


def test_limits_name_the_field_and_store_nothing(api: Api) -> None:
    headers = api.auth(api.tenant_a, *ALL)
    too_many = [{"name": f"S{i}", "value": "v"} for i in range(31)]
    cases = [
        (body(secrets=too_many), "secrets", "30"),
        (body(secrets=[{"name": "A", "value": "v" * 4097}]), "secrets.0.value", "4096"),
        (body(secrets=[{"name": "A" * 129, "value": "v"}]), "secrets.0.name", "128"),
        (body(code=CODE + "#" * 102_400), "code", "102400"),
    ]
    for payload, field, limit in cases:
        response = api.client.post(ACTIONS, json=payload, headers=headers)
        assert_error(response, 400, field, limit)
        assert names_of(api, api.tenant_a, payload["name"]) == []
    action = create(api)
    patch = api.client.patch(
        f"{ACTIONS}/{action['id']}", json={"secrets": too_many}, headers=headers
    )
    assert_error(patch, 400, "secrets")
    kept = api.client.get(f"{ACTIONS}/{action['id']}", headers=headers).json()
    assert [s["name"] for s in kept["secrets"]] == ["API_KEY"]


def test_a_huge_body_is_refused_before_it_is_read(api: Api) -> None:
    response = api.client.post(
        ACTIONS, json=body(code="#" * (2 * 1024 * 1024)), headers=api.auth(None, *ALL)
    )
    assert_error(response, 413, "limit")


# -- 401, 403, 404 ---------------------------------------------------------------------------


def routes(action: str, version: str) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """Every actions route, with the scope it needs and a valid body."""
    url = f"{ACTIONS}/{action}"
    return [
        ("GET", ACTIONS, "read:actions", None),
        ("POST", ACTIONS, "create:actions", body()),
        ("GET", url, "read:actions", None),
        ("PATCH", url, "update:actions", {"name": name()}),
        ("DELETE", url, "delete:actions", None),
        ("POST", f"{url}/deploy", "create:actions", None),
        ("POST", f"{url}/test", "create:actions", {"payload": {}}),
        ("GET", f"{url}/versions", "read:actions", None),
        ("GET", f"{url}/versions/{version}", "read:actions", None),
        ("POST", f"{url}/versions/{version}/deploy", "create:actions", None),
    ]


def test_no_token_or_a_bad_one_is_401_and_a_missing_scope_403(api: Api) -> None:
    action = create(api, deploy=True)
    version = action["deployed_version"]["id"]
    for method, url, scope, payload in routes(action["id"], version):
        none = api.client.request(method, url, json=payload)
        assert_error(none, 401, "Missing authentication")
        bad = api.client.request(
            method, url, json=payload, headers={"Authorization": "Bearer not.a.token"}
        )
        assert_error(bad, 401)
        others = [s for s in ALL if s != scope]
        short = api.client.request(
            method, url, json=payload, headers=api.auth(api.tenant_a, *others)
        )
        assert_error(short, 403, f"Insufficient scope, expected any of: {scope}")
    assert (
        api.client.get(f"{ACTIONS}/{action['id']}", headers=api.auth(None, *ALL)).json()["name"]
        == action["name"]
    )


def test_unknown_ids_are_404(api: Api) -> None:
    action = create(api, deploy=True)
    missing = str(uuid.uuid4())
    headers = api.auth(api.tenant_a, *ALL)
    for method, url, _scope, payload in routes(missing, missing)[2:]:
        assert_error(api.client.request(method, url, json=payload, headers=headers), 404)
    for method, url, _scope, payload in routes(action["id"], missing)[8:]:
        assert_error(api.client.request(method, url, json=payload, headers=headers), 404)


def test_another_tenants_token_can_neither_read_nor_change(api: Api) -> None:
    action = create(api, api.tenant_a, deploy=True)
    version = action["deployed_version"]["id"]
    intruder = api.auth(api.tenant_b, *ALL)
    for method, url, _scope, payload in routes(action["id"], version)[2:]:
        response = api.client.request(method, url, json=payload, headers=intruder)
        assert_error(response, 404)
    listed = api.client.get(ACTIONS, params={"per_page": 100}, headers=intruder).json()
    assert action["id"] not in [a["id"] for a in listed["actions"]]
    owner = api.client.get(f"{ACTIONS}/{action['id']}", headers=api.auth(api.tenant_a, *ALL))
    assert owner.status_code == 200
    assert owner.json()["name"] == action["name"]
    assert owner.json()["deployed_version"]["number"] == 1


def test_deleting_a_bound_action_needs_force(api: Api) -> None:
    headers = api.auth(api.tenant_b, *ALL)
    action = create(api, api.tenant_b, deploy=True)
    bound = api.client.patch(
        "/api/v2/actions/triggers/send-phone-message/bindings",
        json={"bindings": [{"ref": {"type": "action_id", "value": action["id"]}}]},
        headers=headers,
    )
    assert bound.status_code == 200, bound.text
    assert_error(api.client.delete(f"{ACTIONS}/{action['id']}", headers=headers), 409, "force")
    forced = api.client.delete(
        f"{ACTIONS}/{action['id']}", params={"force": "true"}, headers=headers
    )
    assert forced.status_code == 204
    left = api.client.get(
        "/api/v2/actions/triggers/send-phone-message/bindings", headers=headers
    ).json()
    assert action["id"] not in [b["action"]["id"] for b in left["bindings"]]


# -- a deploy is live at once ------------------------------------------------------------


def test_a_deploy_is_what_the_pipeline_runs_when_the_answer_arrives(api: Api) -> None:
    """The directory is refreshed before the write answers: the next delivery on this node
    runs the new version (other nodes poll; tests/store/service cover that)."""
    engine = create_engine_for(api.settings.resolved_database_url, timeout=5)
    try:
        master = api.settings.master_key.get_secret_value() if api.settings.master_key else None
        store = ServiceStore(engine, Keyring.load(master, api.settings.data_dir))
        store.guardian.set_selected_provider(api.tenant_b, "phone-message-hook")
    finally:
        engine.dispose()
    headers = api.auth(api.tenant_b, *ALL)
    action = create(api, api.tenant_b, deploy=True)
    bound = api.client.patch(
        "/api/v2/actions/triggers/send-phone-message/bindings",
        json={"bindings": [{"ref": {"type": "action_name", "value": action["name"]}}]},
        headers=headers,
    )
    assert bound.status_code == 200, bound.text
    directory = api.client.app.state.services.directory  # type: ignore[attr-defined]
    config = api.client.portal.call(directory.aget, api.tenant_b)  # type: ignore[union-attr]
    assert config.provider == "phone-message-hook"
    assert config.provider_settings["version_id"] == action["deployed_version"]["id"]
    newer_code = CODE.replace("sending to", "v2 sending to")
    url = f"{ACTIONS}/{action['id']}"
    assert api.client.patch(url, json={"code": newer_code}, headers=headers).status_code == 200
    v2 = api.client.post(f"{url}/deploy", headers=headers).json()
    config = api.client.portal.call(directory.aget, api.tenant_b)  # type: ignore[union-attr]
    assert config.provider_settings["version_id"] == v2["id"]
    assert config.provider_settings["source"] == newer_code
    api.client.patch(
        "/api/v2/actions/triggers/send-phone-message/bindings",
        json={"bindings": []},
        headers=headers,
    )
