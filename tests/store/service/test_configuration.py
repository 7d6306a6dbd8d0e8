"""Bindings, guardian settings, phone providers and phone templates: each on SQLite and
PostgreSQL, with tenant isolation and credentials sealed."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from runtime.errors import ConflictError, InvalidInputError, LimitExceededError, NotFoundError
from runtime.store.schema import guardian_phone, phone_providers
from runtime.store.service import ServiceStore
from runtime.store.service.phone_providers import NO_DEPLOYED_ACTION, NoDeployedActionError
from tests.store.service.conftest import CPP, SPM, SPM_CODE

TOKEN = "twilio-token-never-shown-7c2e"


def deployed(store: ServiceStore, tenant: str, name: str = "send", triggers: object = SPM) -> str:
    made = store.actions.create(tenant, name=name, supported_triggers=triggers, code=SPM_CODE)
    store.actions.deploy(tenant, made.id)
    return made.id


def test_bindings_by_action_id_and_name_in_order(store: ServiceStore, tenant_a: str) -> None:
    first, second = deployed(store, tenant_a, "one"), deployed(store, tenant_a, "two")
    bound = store.bindings.replace(
        tenant_a,
        "send-phone-message",
        [
            {"ref": {"type": "action_name", "value": "two"}, "display_name": "Second"},
            {"ref": {"type": "action_id", "value": first}},
        ],
    )
    assert [(b.action.id, b.display_name) for b in bound] == [(second, "Second"), (first, "one")]
    assert bound[0].to_api()["action"]["name"] == "two"
    kept = store.bindings.replace(
        tenant_a, "send-phone-message", [{"ref": {"type": "binding_id", "value": bound[1].id}}]
    )
    assert [b.id for b in kept] == [bound[1].id]
    assert store.bindings.list(tenant_a, "send-phone-message") == kept
    assert store.bindings.replace(tenant_a, "send-phone-message", []) == []


def test_binding_refuses_what_cannot_run(store: ServiceStore, tenant_a: str, tenant_b: str) -> None:
    theirs = deployed(store, tenant_b)
    with pytest.raises(NotFoundError):  # another tenant's action
        store.bindings.replace(
            tenant_a, "send-phone-message", [{"ref": {"type": "action_id", "value": theirs}}]
        )
    draft = store.actions.create(tenant_a, name="draft", supported_triggers=SPM, code="")
    with pytest.raises(InvalidInputError, match="not deployed"):
        store.bindings.replace(
            tenant_a, "send-phone-message", [{"ref": {"type": "action_id", "value": draft.id}}]
        )
    other = deployed(store, tenant_a, "cpp", CPP)
    with pytest.raises(InvalidInputError, match="does not support"):
        store.bindings.replace(
            tenant_a, "send-phone-message", [{"ref": {"type": "action_id", "value": other}}]
        )
    with pytest.raises(NotFoundError):
        store.bindings.list(tenant_a, "post-login")
    with pytest.raises(LimitExceededError):
        store.bindings.replace(
            tenant_a,
            "custom-phone-provider",
            [{"ref": {"type": "action_id", "value": other}}] * 21,
        )
    assert store.bindings.list(tenant_b, "send-phone-message") == []


def test_guardian_settings_and_defaults(store: ServiceStore, tenant_a: str) -> None:
    assert store.guardian.message_types(tenant_a) == ["sms"]
    assert store.guardian.selected_provider(tenant_a) == "auth0"
    assert store.guardian.set_message_types(tenant_a, ["voice", "sms"]) == ["sms", "voice"]
    assert store.guardian.set_selected_provider(tenant_a, "phone-message-hook")
    assert store.guardian.selected_provider(tenant_a) == "phone-message-hook"
    with pytest.raises(InvalidInputError) as caught:
        store.guardian.set_selected_provider(tenant_a, "vonage")
    assert caught.value.field == "provider"
    with pytest.raises(InvalidInputError):
        store.guardian.set_message_types(tenant_a, ["email"])
    store.guardian.set_templates(
        tenant_a,
        {"enrollment_message": "{{code}} enrol", "verification_message": "{{code}} verify"},
    )
    assert store.guardian.templates(tenant_a)["verification_message"] == "{{code}} verify"
    with pytest.raises(InvalidInputError) as caught:
        store.guardian.set_templates(
            tenant_a, {"enrollment_message": "no code", "verification_message": "{{code}}"}
        )
    assert caught.value.field == "enrollment_message"


def test_guardian_twilio_token_is_write_only(
    store: ServiceStore, tenant_a: str, tenant_b: str
) -> None:
    shown = store.guardian.set_twilio(
        tenant_a, {"sid": "AC" + "0" * 32, "auth_token": TOKEN, "from": "+15555550100"}
    )
    assert shown == {
        "from": "+15555550100",
        "messaging_service_sid": None,
        "auth_token": None,
        "sid": "AC" + "0" * 32,
    }
    assert store.guardian.twilio(tenant_a)["auth_token"] is None
    assert store.guardian.twilio_token(tenant_a) == TOKEN
    assert store.guardian.twilio(tenant_b)["sid"] is None  # the other tenant sees nothing
    with store.engine.connect() as conn:
        raw = conn.execute(select(guardian_phone).where(guardian_phone.c.tenant == tenant_a)).all()
    assert raw
    assert TOKEN not in repr(raw)
    with pytest.raises(InvalidInputError) as caught:
        store.guardian.set_twilio(tenant_a, {"from": "x" * 65})
    assert caught.value.field == "from"


def test_phone_provider_one_per_tenant_credentials_sealed(
    store: ServiceStore, tenant_a: str, tenant_b: str
) -> None:
    made = store.phone_providers.create(
        tenant_a,
        name="twilio",
        disabled=False,
        configuration={"sid": "AC1", "default_from": "+15555550100", "delivery_methods": ["text"]},
        credentials={"auth_token": TOKEN},
    )
    assert made["id"].startswith("pro_")
    assert made["channel"] == "phone"
    assert made["tenant"] == tenant_a
    assert "credentials" not in made
    assert TOKEN not in json.dumps([made, store.phone_providers.list(tenant_a)])
    with pytest.raises(ConflictError):
        store.phone_providers.create(
            tenant_a,
            name="custom",
            disabled=False,
            configuration={"delivery_methods": ["text"]},
            credentials={},
        )
    for call in (
        lambda: store.phone_providers.get(tenant_b, made["id"]),
        lambda: store.phone_providers.update(tenant_b, made["id"], disabled=True),
        lambda: store.phone_providers.delete(tenant_b, made["id"]),
    ):
        with pytest.raises(NotFoundError):
            call()
    assert store.phone_providers.list(tenant_b) == []
    updated = store.phone_providers.update(tenant_a, made["id"], disabled=True)
    assert updated["disabled"] is True
    assert store.phone_providers.list(tenant_a, disabled=False) == []
    with store.engine.connect() as conn:
        raw = conn.execute(
            select(phone_providers).where(phone_providers.c.tenant == tenant_a)
        ).all()
    assert raw
    assert TOKEN not in repr(raw)
    store.phone_providers.update(tenant_a, made["id"], disabled=False)
    active = store.phone_providers.active(tenant_a)
    assert active is not None
    assert active[1] == {"auth_token": TOKEN}
    store.phone_providers.delete(tenant_a, made["id"])
    assert store.phone_providers.active(tenant_a) is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "vonage"}, "name"),
        ({"configuration": {"delivery_methods": []}}, "configuration.delivery_methods"),
        ({"configuration": {"delivery_methods": ["text"]}}, "configuration.sid"),
        ({"credentials": {}}, "credentials.auth_token"),
        (
            {"configuration": {"sid": "AC1", "delivery_methods": ["fax"]}},
            "configuration.delivery_methods",
        ),
        ({"disabled": "no"}, "disabled"),
    ],
)
def test_phone_provider_bad_input(
    store: ServiceStore, tenant_a: str, fields: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {
        "name": "twilio",
        "disabled": False,
        "configuration": {"sid": "AC1", "delivery_methods": ["text"]},
        "credentials": {"auth_token": "t"},
    }
    values.update(fields)
    with pytest.raises(InvalidInputError) as caught:
        store.phone_providers.create(tenant_a, **values)
    assert caught.value.field == field
    assert store.phone_providers.list(tenant_a) == []


CUSTOM = {"configuration": {"delivery_methods": ["text"]}, "credentials": {}}


def test_custom_provider_needs_a_deployed_action_bound_to_its_trigger(
    store: ServiceStore, tenant_a: str, tenant_b: str
) -> None:
    with pytest.raises(NoDeployedActionError) as caught:
        store.phone_providers.create(tenant_a, name="custom", **CUSTOM)
    assert (caught.value.field, caught.value.error_code) == ("name", NO_DEPLOYED_ACTION)
    action = deployed(store, tenant_a, "cpp", CPP)  # deployed, not bound yet
    with pytest.raises(NoDeployedActionError):
        store.phone_providers.create(tenant_a, name="custom", **CUSTOM)
    assert store.phone_providers.list(tenant_a) == []
    store.bindings.replace(
        tenant_a, "custom-phone-provider", [{"ref": {"type": "action_id", "value": action}}]
    )
    assert store.phone_providers.create(tenant_a, name="custom", **CUSTOM)["name"] == "custom"
    with pytest.raises(NoDeployedActionError):  # another tenant's action is not this one's
        store.phone_providers.create(tenant_b, name="custom", **CUSTOM)


def test_switching_to_custom_needs_a_deployed_action_too(
    store: ServiceStore, tenant_a: str
) -> None:
    made = store.phone_providers.create(
        tenant_a,
        name="twilio",
        configuration={"sid": "AC1", "delivery_methods": ["text"]},
        credentials={"auth_token": TOKEN},
    )
    with pytest.raises(NoDeployedActionError):
        store.phone_providers.update(tenant_a, made["id"], name="custom", **CUSTOM)
    assert store.phone_providers.get(tenant_a, made["id"]) == made
    action = deployed(store, tenant_a, "cpp", CPP)
    store.bindings.replace(
        tenant_a, "custom-phone-provider", [{"ref": {"type": "action_id", "value": action}}]
    )
    switched = store.phone_providers.update(tenant_a, made["id"], name="custom", **CUSTOM)
    assert switched["name"] == "custom"


def test_phone_templates(store: ServiceStore, tenant_a: str, tenant_b: str) -> None:
    made = store.phone_templates.create(
        tenant_a,
        type="otp_verify",
        disabled=False,
        content={"body": {"text": "{{ code }} is yours", "voice": "Your code: {{ code }}"}},
    )
    assert made["id"].startswith("tem_")
    assert made["content"]["syntax"] == "liquid"
    with pytest.raises(ConflictError):
        store.phone_templates.create(tenant_a, type="otp_verify")
    with pytest.raises(NotFoundError):
        store.phone_templates.get(tenant_b, made["id"])
    with pytest.raises(NotFoundError):
        store.phone_templates.update(tenant_b, made["id"], disabled=True)
    changed = store.phone_templates.update(
        tenant_a, made["id"], content={"body": {"text": "Code {{ code }}"}}
    )
    assert changed["content"]["body"] == {
        "text": "Code {{ code }}",
        "voice": "Your code: {{ code }}",
    }
    with pytest.raises(InvalidInputError) as caught:
        store.phone_templates.update(tenant_a, made["id"], content={"body": {"text": "no code"}})
    assert caught.value.field == "content.body.text"
    reset = store.phone_templates.reset(tenant_a, made["id"])
    assert "{{ code }}" in reset["content"]["body"]["text"]
    store.phone_templates.delete(tenant_a, made["id"])
    assert store.phone_templates.list(tenant_a) == []
