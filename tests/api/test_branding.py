"""Auth0's phone providers and phone templates: CRUD with Auth0's bodies and statuses,
credentials never returned, Liquid checked, a ``custom`` provider refused until an action is
deployed for it, both ``/try`` endpoints sending a real test message (Twilio's API stubbed on
127.0.0.1; the outbox), scopes, and tenant isolation. On SQLite and PostgreSQL (the ``api``
fixture)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from plugins.outbox import OutboxProvider
from runtime.store.service import ServiceStore
from runtime.store.service.phone_providers import NO_DEPLOYED_ACTION
from runtime.store.tenant_config import tenant_config
from tests.api.conftest import Api, new_tenant
from tests.api.test_guardian import assert_error
from tests.support.stub_server import StubServer
from tests.twilio.conftest import ACCOUNT_SID, AUTH_TOKEN, message_resource

PROVIDERS = "/api/v2/branding/phone/providers"
TEMPLATES = "/api/v2/branding/phone/templates"
P = ("create:phone_providers", "read:phone_providers", "update:phone_providers")
T = ("create:phone_templates", "read:phone_templates", "update:phone_templates")
ALL = (*P, "delete:phone_providers", *T, "delete:phone_templates")

TWILIO = {
    "name": "twilio",
    "disabled": False,
    "credentials": {"auth_token": AUTH_TOKEN},
    "configuration": {
        "sid": ACCOUNT_SID,
        "default_from": "+14155550100",
        "delivery_methods": ["text", "voice"],
    },
}
CUSTOM = {
    "name": "custom",
    "disabled": False,
    "credentials": {},
    "configuration": {"delivery_methods": ["text"]},
}


@pytest.fixture
def tenant(store: ServiceStore) -> str:
    """A tenant of this test only (one phone provider per tenant)."""
    return store.tenants.create(new_tenant()).id


def outbox(api: Api, tenant: str) -> list[str]:
    return [m.text for m in OutboxProvider(api.settings.resolved_database_url).messages(tenant)]


def h(api: Api, tenant: str, *scopes: str) -> dict[str, str]:
    return api.auth(tenant, *(scopes or ALL))


def created(api: Api, tenant: str, body: dict[str, Any] = TWILIO) -> dict[str, Any]:
    response = api.client.post(PROVIDERS, json=body, headers=h(api, tenant))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


CPP = "custom-phone-provider"
BINDINGS = f"/api/v2/actions/triggers/{CPP}/bindings"


def new_action(api: Api, tenant: str, *, code: str | None = None, deploy: bool = True) -> str:
    """An action for custom-phone-provider (deployed unless told), through the API."""
    body: dict[str, Any] = {
        "name": f"cpp-{uuid.uuid4().hex[:8]}",
        "supported_triggers": [{"id": CPP, "version": "v1"}],
        "deploy": deploy,
    }
    if code is not None:
        body["code"] = code
    made = api.client.post("/api/v2/actions/actions", json=body, headers=actions_auth(api, tenant))
    assert made.status_code == 201, made.text
    action_id: str = made.json()["id"]
    return action_id


def actions_auth(api: Api, tenant: str) -> dict[str, str]:
    return api.auth(tenant, "create:actions", "update:actions", "read:actions")


def bind(api: Api, tenant: str, *action_ids: str) -> None:
    """Exactly ``action_ids`` bound to custom-phone-provider (none: unbound)."""
    refs = [{"ref": {"type": "action_id", "value": a}} for a in action_ids]
    bound = api.client.patch(BINDINGS, json={"bindings": refs}, headers=actions_auth(api, tenant))
    assert bound.status_code == 200, bound.text


def deployed_action(api: Api, tenant: str, code: str | None = None) -> str:
    """What a ``custom`` provider needs first: a deployed action bound to its trigger."""
    action_id = new_action(api, tenant, code=code)
    bind(api, tenant, action_id)
    return action_id


def created_custom(api: Api, tenant: str) -> dict[str, Any]:
    """A ``custom`` provider, its action deployed first (as Auth0 requires)."""
    deployed_action(api, tenant)
    return created(api, tenant, CUSTOM)


# -- phone providers ------------------------------------------------------------------------


def test_create_get_list_a_provider_without_its_credentials(
    api: Api, store: ServiceStore, tenant: str
) -> None:
    provider = created(api, tenant)
    assert provider["id"].startswith("pro_")
    assert (provider["tenant"], provider["name"], provider["channel"]) == (
        tenant,
        "twilio",
        "phone",
    )
    assert provider["configuration"]["sid"] == ACCOUNT_SID
    assert {"created_at", "updated_at"} <= set(provider)
    assert "credentials" not in provider
    got = api.client.get(f"{PROVIDERS}/{provider['id']}", headers=h(api, tenant))
    assert got.json() == provider
    listed = api.client.get(PROVIDERS, headers=h(api, tenant)).json()
    assert listed == {"providers": [provider]}
    only_disabled = api.client.get(PROVIDERS, params={"disabled": "true"}, headers=h(api, tenant))
    assert only_disabled.json() == {"providers": []}
    for response in (got, api.client.get(PROVIDERS, headers=h(api, tenant))):
        assert AUTH_TOKEN not in response.text
    assert store.phone_providers.active(tenant) is not None  # sealed, and opened for delivery


def test_a_second_provider_is_409_and_changes_nothing(api: Api, tenant: str) -> None:
    first = created(api, tenant)
    again = api.client.post(PROVIDERS, json=CUSTOM, headers=h(api, tenant))
    assert_error(again, 409, "Custom phone provider conflict")
    assert api.client.get(PROVIDERS, headers=h(api, tenant)).json() == {"providers": [first]}


def test_patch_and_delete(api: Api, tenant: str) -> None:
    provider = created(api, tenant)
    url = f"{PROVIDERS}/{provider['id']}"
    patched = api.client.patch(url, json={"disabled": True}, headers=h(api, tenant))
    assert patched.status_code == 200, patched.text
    assert patched.json()["disabled"] is True
    assert patched.json()["configuration"] == provider["configuration"]
    deployed_action(api, tenant)
    switched = api.client.patch(url, json={"name": "custom", **CUSTOM}, headers=h(api, tenant))
    assert switched.json()["name"] == "custom"
    gone = api.client.delete(url, headers=h(api, tenant, "delete:phone_providers"))
    assert gone.status_code == 204
    assert gone.content == b""
    missing = api.client.get(url, headers=h(api, tenant))
    assert_error(missing, 404, "Phone provider has not been configured.")
    assert_error(api.client.delete(url, headers=h(api, tenant)), 404)


def assert_no_deployed_action(response: Any) -> None:
    """Auth0's refusal of a ``custom`` provider without a deployed action: its errorCode,
    and a message naming the field and what to do."""
    body = assert_error(response, 400, "name: custom needs a deployed action", CPP, "deploy")
    assert (
        body["errorCode"] == NO_DEPLOYED_ACTION == "custom_email_provider_deployed_action_not_found"
    )


def test_custom_is_refused_until_an_action_is_deployed_and_bound(api: Api, tenant: str) -> None:
    assert_no_deployed_action(api.client.post(PROVIDERS, json=CUSTOM, headers=h(api, tenant)))
    draft = new_action(api, tenant, deploy=False)  # created, never deployed: not enough
    assert_no_deployed_action(api.client.post(PROVIDERS, json=CUSTOM, headers=h(api, tenant)))
    assert api.client.get(PROVIDERS, headers=h(api, tenant)).json() == {"providers": []}
    deployed = api.client.post(
        f"/api/v2/actions/actions/{draft}/deploy", headers=actions_auth(api, tenant)
    )
    assert deployed.status_code == 202, deployed.text
    assert_no_deployed_action(  # deployed, yet bound to nothing: the provider would run nothing
        api.client.post(PROVIDERS, json=CUSTOM, headers=h(api, tenant))
    )
    bind(api, tenant, draft)
    assert created(api, tenant, CUSTOM)["name"] == "custom"


def test_switching_to_custom_is_refused_until_an_action_is_deployed(api: Api, tenant: str) -> None:
    provider = created(api, tenant)
    url = f"{PROVIDERS}/{provider['id']}"
    switch = {"name": "custom", "configuration": {"delivery_methods": ["text"]}, "credentials": {}}
    assert_no_deployed_action(api.client.patch(url, json=switch, headers=h(api, tenant)))
    assert api.client.get(url, headers=h(api, tenant)).json() == provider  # still twilio
    deployed_action(api, tenant)
    switched = api.client.patch(url, json=switch, headers=h(api, tenant))
    assert switched.status_code == 200, switched.text
    assert switched.json()["name"] == "custom"
    bind(api, tenant)  # unbound since: a change that keeps custom is not refused
    kept = api.client.patch(url, json={"disabled": True}, headers=h(api, tenant))
    assert (kept.status_code, kept.json()["name"]) == (200, "custom")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**TWILIO, "name": "vonage"}, "name"),
        ({**TWILIO, "name": 7}, "name"),
        ({**TWILIO, "disabled": "no"}, "disabled"),
        ({k: v for k, v in TWILIO.items() if k != "credentials"}, "credentials"),
        ({**TWILIO, "credentials": {}}, "credentials.auth_token"),
        ({**TWILIO, "credentials": {"auth_token": "x" * 256}}, "credentials.auth_token"),
        ({**TWILIO, "configuration": {"sid": "AC1"}}, "configuration.delivery_methods"),
        (
            {**TWILIO, "configuration": {"sid": "AC1", "delivery_methods": ["fax"]}},
            "configuration.delivery_methods",
        ),
        ({**CUSTOM, "credentials": {"auth_token": "t"}}, "credentials"),
        ({**TWILIO, "surprise": True}, "surprise"),
    ],
)
def test_bad_provider_bodies_are_400_naming_the_field_and_store_nothing(
    api: Api, tenant: str, body: dict[str, Any], field: str
) -> None:
    response = api.client.post(PROVIDERS, json=body, headers=h(api, tenant))
    assert_error(response, 400, field)
    assert api.client.get(PROVIDERS, headers=h(api, tenant)).json() == {"providers": []}


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "(body)"), ({"disabled": None}, "disabled"), ({"credentials": {"x": "y"}}, "x")],
)
def test_bad_patches_are_400_and_change_nothing(
    api: Api, tenant: str, body: dict[str, Any], field: str
) -> None:
    provider = created(api, tenant)
    url = f"{PROVIDERS}/{provider['id']}"
    assert_error(api.client.patch(url, json=body, headers=h(api, tenant)), 400, field)
    assert api.client.get(url, headers=h(api, tenant)).json() == provider


def test_try_sends_a_real_message_with_this_provider_even_disabled(
    api: Api, store: ServiceStore, tenant: str
) -> None:
    with StubServer() as twilio:
        twilio.respond(201, message_resource())
        # Twilio's API is reached at the tenant's base_url (an imported setting): the stub
        store.tenants.update(
            tenant, settings={"provider": "twilio", "provider_settings": {"base_url": twilio.url}}
        )
        provider = created(api, tenant, {**TWILIO, "disabled": True})
        response = api.client.post(
            f"{PROVIDERS}/{provider['id']}/try",
            json={"to": "+14155552671", "delivery_method": "text"},
            headers=h(api, tenant, "create:phone_providers"),
        )
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["code"], body["status"]) == (0, "delivered"), body
        assert isinstance(body["message"], str)
        (sent,) = twilio.requests
    assert sent.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert sent.form["To"] == ["+14155552671"]
    assert sent.form["From"] == ["+14155550100"]
    assert "123456" in sent.form["Body"][0]
    expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert sent.headers["Authorization"] == f"Basic {expected}"
    assert outbox(api, tenant) == []  # never the default sender


def test_try_that_the_provider_refuses_says_so_and_never_falls_back(
    api: Api, store: ServiceStore, tenant: str
) -> None:
    with StubServer() as twilio:
        twilio.respond(400, {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400})
        store.tenants.update(
            tenant, settings={"provider": "twilio", "provider_settings": {"base_url": twilio.url}}
        )
        provider = created(api, tenant)
        response = api.client.post(
            f"{PROVIDERS}/{provider['id']}/try", json={"to": "+14155552671"}, headers=h(api, tenant)
        )
        assert len(twilio.requests) == 1
    assert response.status_code == 202
    assert (response.json()["code"], response.json()["status"]) == (1, "failed")
    assert outbox(api, tenant) == []


def test_try_a_custom_provider_whose_action_was_unbound_since_sends_nothing(
    api: Api, tenant: str
) -> None:
    provider = created_custom(api, tenant)
    bind(api, tenant)  # no action left for the provider to run
    response = api.client.post(
        f"{PROVIDERS}/{provider['id']}/try", json={"to": "+14155552671"}, headers=h(api, tenant)
    )
    assert response.status_code == 202
    assert response.json()["code"] == 1
    assert outbox(api, tenant) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "to"),
        ({"to": "+1" + "5" * 20}, "to"),
        ({"to": "not a number"}, "to"),
        ({"to": "+14155552671", "delivery_method": "fax"}, "delivery_method"),
    ],
)
def test_try_bad_bodies_are_400(api: Api, tenant: str, body: dict[str, Any], field: str) -> None:
    provider = created_custom(api, tenant)
    url = f"{PROVIDERS}/{provider['id']}/try"
    assert_error(api.client.post(url, json=body, headers=h(api, tenant)), 400, field)


# -- phone templates ------------------------------------------------------------------------


def new_template(api: Api, tenant: str, **body: Any) -> dict[str, Any]:
    response = api.client.post(
        TEMPLATES, json={"type": "otp_verify", **body}, headers=h(api, tenant)
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def test_template_crud_reset_and_409(api: Api, tenant: str) -> None:
    template = new_template(api, tenant)
    assert template["id"].startswith("tem_")
    assert (template["type"], template["channel"], template["disabled"]) == (
        "otp_verify",
        "phone",
        False,
    )
    default_text = template["content"]["body"]["text"]
    assert "{{ code }}" in default_text
    again = api.client.post(TEMPLATES, json={"type": "otp_verify"}, headers=h(api, tenant))
    assert_error(again, 409, "Phone template already configured for tenant")
    url = f"{TEMPLATES}/{template['id']}"
    patch = {"content": {"from": "+15555550100", "body": {"text": "Code: {{ code }}"}}}
    patched = api.client.patch(url, json=patch, headers=h(api, tenant)).json()
    assert patched["content"]["body"]["text"] == "Code: {{ code }}"
    assert patched["content"]["body"]["voice"] == template["content"]["body"]["voice"]
    assert patched["content"]["from"] == "+15555550100"
    assert api.client.get(url, headers=h(api, tenant)).json() == patched
    listed = api.client.get(TEMPLATES, headers=h(api, tenant)).json()
    assert listed == {"templates": [patched]}
    reset = api.client.patch(f"{url}/reset", headers=h(api, tenant))
    assert reset.status_code == 200
    assert reset.json()["content"]["body"]["text"] == default_text
    assert api.client.delete(url, headers=h(api, tenant)).status_code == 204
    assert_error(api.client.get(url, headers=h(api, tenant)), 404, "Phone template not found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "otp_login"}, "type"),
        ({"type": "otp_verify", "disabled": 1}, "disabled"),
        ({"type": "otp_verify", "content": {"syntax": "mustache"}}, "content.syntax"),
        ({"type": "otp_verify", "content": {"body": {"text": "no code"}}}, "content.body.text"),
        ({"type": "otp_verify", "content": {"body": {"sms": "{{ code }}"}}}, "content.body.sms"),
        ({"type": "otp_verify", "content": {"from": "x" * 17}}, "content.from"),
        ({"type": "otp_verify", "extra": 1}, "extra"),
    ],
)
def test_bad_template_bodies_are_400_naming_the_field_and_store_nothing(
    api: Api, tenant: str, body: dict[str, Any], field: str
) -> None:
    assert_error(api.client.post(TEMPLATES, json=body, headers=h(api, tenant)), 400, field)
    assert api.client.get(TEMPLATES, headers=h(api, tenant)).json() == {"templates": []}


def test_a_liquid_error_is_refused_naming_the_field_and_line(api: Api, tenant: str) -> None:
    template = new_template(api, tenant)
    url = f"{TEMPLATES}/{template['id']}"
    broken = {"content": {"body": {"voice": "Your code\nis {{ code }}\n{% nosuchtag %}"}}}
    error = assert_error(api.client.patch(url, json=broken, headers=h(api, tenant)), 400)
    assert "content.body.voice" in error["message"]
    assert "at 3:" in error["message"]  # line:column
    assert api.client.get(url, headers=h(api, tenant)).json() == template


def test_try_renders_with_a_sample_code_and_sends_it(api: Api, tenant: str) -> None:
    body = {"text": "{{ code }} opens {{ tenant.friendly_name }}", "voice": "Say {{ code }}"}
    template = new_template(api, tenant, content={"body": body})
    response = api.client.post(
        f"{TEMPLATES}/{template['id']}/try",
        json={"to": "+14155552671", "delivery_method": "text"},
        headers=h(api, tenant, "create:phone_templates"),
    )
    assert response.status_code == 202, response.text
    assert isinstance(response.json()["message"], str)
    assert response.json()["status"] == "stored"  # the tenant's provider: the outbox
    assert outbox(api, tenant) == [f"123456 opens {tenant}"]


def test_only_enabled_templates_reach_deliveries(
    api: Api, store: ServiceStore, tenant: str
) -> None:
    """What the directory serves the pipeline (tenant_config): a disabled template is out."""
    enabled = new_template(api, tenant, content={"body": {"text": "V {{ code }}"}})
    new_template(
        api, tenant, type="otp_enroll", disabled=True, content={"body": {"text": "E {{ code }}"}}
    )
    config, _ = tenant_config(store, tenant)
    assert config.templates == {"verification": "V {{ code }}"}
    off = api.client.patch(
        f"{TEMPLATES}/{enabled['id']}", json={"disabled": True}, headers=h(api, tenant)
    )
    assert off.status_code == 200
    assert tenant_config(store, tenant)[0].templates == {}


# -- auth and isolation ---------------------------------------------------------------------

ENDPOINTS = [  # method, path (with {id}), the scope it needs, a valid body
    ("get", PROVIDERS, "read:phone_providers", None),
    ("post", PROVIDERS, "create:phone_providers", CUSTOM),
    ("get", PROVIDERS + "/{id}", "read:phone_providers", None),
    ("patch", PROVIDERS + "/{id}", "update:phone_providers", {"disabled": True}),
    ("delete", PROVIDERS + "/{id}", "delete:phone_providers", None),
    ("post", PROVIDERS + "/{id}/try", "create:phone_providers", {"to": "+14155552671"}),
    ("get", TEMPLATES, "read:phone_templates", None),
    ("post", TEMPLATES, "create:phone_templates", {"type": "otp_enroll"}),
    ("get", TEMPLATES + "/{id}", "read:phone_templates", None),
    ("patch", TEMPLATES + "/{id}", "update:phone_templates", {"disabled": True}),
    ("delete", TEMPLATES + "/{id}", "delete:phone_templates", None),
    ("patch", TEMPLATES + "/{id}/reset", "update:phone_templates", None),
    ("post", TEMPLATES + "/{id}/try", "create:phone_templates", {"to": "+14155552671"}),
]
IDS = [f"{m} {p.split('/phone/')[1]}" for m, p, _, _ in ENDPOINTS]


def call(api: Api, method: str, url: str, body: Any, headers: dict[str, str]) -> Any:
    return api.client.request(method.upper(), url, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "scope", "body"), ENDPOINTS, ids=IDS)
def test_401_without_or_with_a_bad_token_and_403_without_the_scope(
    api: Api, tenant: str, method: str, path: str, scope: str, body: Any
) -> None:
    url = path.format(id="pro_x" if "providers" in path else "tem_x")
    assert_error(call(api, method, url, body, {}), 401, "Missing authentication")
    assert_error(call(api, method, url, body, {"Authorization": "Bearer x.y.z"}), 401)
    others = [s for s in ALL if s != scope]
    denied = call(api, method, url, body, api.auth(tenant, *others))
    assert_error(denied, 403, f"Insufficient scope, expected any of: {scope}")


@pytest.mark.parametrize(("method", "path", "scope", "body"), ENDPOINTS, ids=IDS)
def test_another_tenants_objects_are_404_and_untouched(
    api: Api, store: ServiceStore, method: str, path: str, scope: str, body: Any
) -> None:
    owner, other = store.tenants.create(new_tenant()).id, store.tenants.create(new_tenant()).id
    provider = created_custom(api, owner)
    template = new_template(api, owner)
    if "{id}" not in path:  # lists and creates act on the caller's tenant only
        response = call(api, method, path, body, h(api, other))
        assert provider["id"] not in response.text
        assert template["id"] not in response.text
    else:
        url = path.format(id=provider["id"] if "providers" in path else template["id"])
        assert_error(call(api, method, url, body, h(api, other)), 404)
    assert api.client.get(PROVIDERS, headers=h(api, owner)).json() == {"providers": [provider]}
    assert api.client.get(TEMPLATES, headers=h(api, owner)).json() == {"templates": [template]}
    assert outbox(api, owner) == []


def test_try_a_bad_number_is_named_as_to_without_its_value(api: Api, tenant: str) -> None:
    provider = created_custom(api, tenant)
    url = f"{PROVIDERS}/{provider['id']}/try"
    body = assert_error(
        api.client.post(url, json={"to": "+4479111 x12"}, headers=h(api, tenant)), 400
    )
    assert body["message"] == (
        "Payload validation error: 'has 'x' at character 10: letters are not read as digits, "
        "and extensions cannot be dialled' on property to."
    )
