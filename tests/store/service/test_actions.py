"""Actions: drafts, immutable versions, rollback, the caps, sealed secrets, tenant isolation;
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

import runtime.store.service.actions
from runtime.errors import ConflictError, InvalidInputError, LimitExceededError, NotFoundError
from runtime.store.schema import action_secrets, action_versions, actions
from runtime.store.service import ActionRow, ServiceStore
from runtime.store.service.limits import MAX_VERSIONS
from tests.store.service.conftest import SPM, SPM_CODE

SECRET = "s3cr3t-value-never-shown-1f9a"


def make(store: ServiceStore, tenant: str, name: str = "send", **extra: Any) -> ActionRow:
    return store.actions.create(tenant, name=name, supported_triggers=SPM, code=SPM_CODE, **extra)


def test_create_get_list_update_delete(store: ServiceStore, tenant_a: str) -> None:
    made = make(store, tenant_a, secrets=[{"name": "API_KEY", "value": SECRET}])
    body = made.to_api()
    assert body["name"] == "send"
    assert body["code"] == SPM_CODE
    assert body["supported_triggers"] == SPM
    assert body["status"] == "built"
    assert body["secrets"][0]["name"] == "API_KEY"
    assert "value" not in body["secrets"][0]
    assert "deployed_version" not in body
    assert body["all_changes_deployed"] is False
    assert body["created_at"].endswith("Z")
    assert store.actions.get(tenant_a, made.id).to_api() == body
    found, total = store.actions.list(tenant_a, trigger_id="send-phone-message")
    assert total == 1
    assert [a.id for a in found] == [made.id]
    assert store.actions.list(tenant_a, trigger_id="custom-phone-provider") == ([], 0)
    assert store.actions.list(tenant_a, deployed=True) == ([], 0)
    changed = store.actions.update(tenant_a, made.id, code=SPM_CODE + "\n# v2\n")
    assert changed.code.endswith("# v2\n")
    store.actions.delete(tenant_a, made.id)
    with pytest.raises(NotFoundError):
        store.actions.get(tenant_a, made.id)


def test_another_tenants_action_is_not_found(
    store: ServiceStore, tenant_a: str, tenant_b: str
) -> None:
    theirs = make(store, tenant_b, secrets=[{"name": "API_KEY", "value": SECRET}])
    version = store.actions.deploy(tenant_b, theirs.id)
    for call in (
        lambda: store.actions.get(tenant_a, theirs.id),
        lambda: store.actions.update(tenant_a, theirs.id, code="x = 1"),
        lambda: store.actions.delete(tenant_a, theirs.id),
        lambda: store.actions.deploy(tenant_a, theirs.id),
        lambda: store.actions.versions(tenant_a, theirs.id),
        lambda: store.actions.version(tenant_a, theirs.id, version.id),
        lambda: store.actions.rollback(tenant_a, theirs.id, version.id),
        lambda: store.actions.secret_values(tenant_a, theirs.id),
    ):
        with pytest.raises(NotFoundError):
            call()
    assert store.actions.list(tenant_a) == ([], 0)
    assert store.actions.get(tenant_b, theirs.id).code == SPM_CODE  # untouched


def test_names_are_unique_per_tenant(store: ServiceStore, tenant_a: str, tenant_b: str) -> None:
    make(store, tenant_a)
    with pytest.raises(ConflictError):
        make(store, tenant_a)
    make(store, tenant_b)  # another tenant may use the name


def test_deploy_makes_an_immutable_version(store: ServiceStore, tenant_a: str) -> None:
    made = make(store, tenant_a)
    first = store.actions.deploy(tenant_a, made.id)
    assert first.number == 1
    assert first.deployed
    assert first.code == SPM_CODE
    store.actions.update(
        tenant_a, made.id, code="def on_execute_send_phone_message(e, a):\n  pass\n"
    )
    draft = store.actions.get(tenant_a, made.id)
    assert draft.all_changes_deployed is False
    assert draft.deployed_version is not None
    assert draft.deployed_version.code == SPM_CODE
    assert store.actions.version(tenant_a, made.id, first.id).code == SPM_CODE  # not changed
    second = store.actions.deploy(tenant_a, made.id)
    assert second.number == 2
    assert store.actions.get(tenant_a, made.id).all_changes_deployed
    assert not store.actions.version(tenant_a, made.id, first.id).deployed
    listed, total = store.actions.versions(tenant_a, made.id)
    assert total == 2
    assert [v.number for v in listed] == [2, 1]


def test_rollback_deploys_a_new_version_identical_to_the_old(
    store: ServiceStore, tenant_a: str
) -> None:
    made = make(store, tenant_a)
    first = store.actions.deploy(tenant_a, made.id)
    store.actions.update(tenant_a, made.id, code=SPM_CODE + "# later\n")
    store.actions.deploy(tenant_a, made.id)
    back = store.actions.rollback(tenant_a, made.id, first.id)
    assert back.number == 3
    assert back.deployed
    assert back.id != first.id
    same = ("code", "runtime", "supported_triggers", "dependencies")
    assert {k: getattr(back, k) for k in same} == {k: getattr(first, k) for k in same}
    action = store.actions.get(tenant_a, made.id)
    assert action.deployed_version is not None
    assert action.deployed_version.id == back.id
    assert action.code == first.code
    assert action.all_changes_deployed


def test_fifty_versions_at_most_the_oldest_go(store: ServiceStore, tenant_a: str) -> None:
    made = make(store, tenant_a)
    for _ in range(MAX_VERSIONS + 3):
        last = store.actions.deploy(tenant_a, made.id)
    listed, total = store.actions.versions(tenant_a, made.id, per_page=100)
    assert total == MAX_VERSIONS
    assert next(v.number for v in listed) == last.number == MAX_VERSIONS + 3
    assert min(v.number for v in listed) == 4  # 1, 2 and 3 deleted
    assert sum(v.deployed for v in listed) == 1


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    [
        ({"code": "x" * (100 * 1024 + 1)}, "code", LimitExceededError),
        (
            {"secrets": [{"name": f"S{i}", "value": "v"} for i in range(31)]},
            "secrets",
            LimitExceededError,
        ),
        ({"secrets": [{"name": "N" * 129, "value": "v"}]}, "secrets.0.name", LimitExceededError),
        ({"secrets": [{"name": "K", "value": "v" * 4097}]}, "secrets.0.value", LimitExceededError),
        ({"secrets": [{"name": "K", "value": 5}]}, "secrets.0.value", InvalidInputError),
        ({"secrets": [{"name": "1K", "value": "v"}]}, "secrets.0.name", InvalidInputError),
        ({"secrets": [{"name": "KEY\n", "value": "v"}]}, "secrets.0.name", InvalidInputError),
        (
            {"supported_triggers": [{"id": "post-login"}]},
            "supported_triggers.0.id",
            InvalidInputError,
        ),
        ({"supported_triggers": SPM * 2}, "supported_triggers", InvalidInputError),
        ({"name": 7}, "name", InvalidInputError),
        ({"runtime": "node22"}, "runtime", InvalidInputError),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(
    store: ServiceStore,
    tenant_a: str,
    fields: dict[str, Any],
    field: str,
    error: type[InvalidInputError],
) -> None:
    values: dict[str, Any] = {"name": "a", "supported_triggers": SPM, "code": SPM_CODE}
    values.update(fields)
    with pytest.raises(error) as caught:
        store.actions.create(tenant_a, **values)
    assert caught.value.field == field
    assert store.actions.list(tenant_a) == ([], 0)
    assert store.tenants.version(tenant_a) == 1  # nothing changed


def test_limits_at_the_edge_are_accepted(store: ServiceStore, tenant_a: str) -> None:
    made = store.actions.create(
        tenant_a,
        name="edge",
        supported_triggers=SPM,
        code="#" * (100 * 1024),
        secrets=[{"name": "N" * 128, "value": "v" * 4096}]
        + [{"name": f"S{i}", "value": "v"} for i in range(29)],
    )
    assert len(made.secrets) == 30


def test_a_hundred_actions_per_tenant(store: ServiceStore, tenant_a: str) -> None:
    for number in range(100):
        store.actions.create(tenant_a, name=f"a{number}", supported_triggers=SPM, code="")
    with pytest.raises(LimitExceededError) as caught:
        store.actions.create(tenant_a, name="one-more", supported_triggers=SPM, code="")
    assert caught.value.field == "actions"


def test_secrets_are_sealed_and_never_shown(store: ServiceStore, tenant_a: str) -> None:
    made = make(store, tenant_a, secrets=[{"name": "API_KEY", "value": SECRET}])
    store.actions.deploy(tenant_a, made.id)
    shown = json.dumps(
        [
            store.actions.get(tenant_a, made.id).to_api(),
            [v.to_api() for v in store.actions.versions(tenant_a, made.id)[0]],
            [a.to_api() for a in store.actions.list(tenant_a)[0]],
        ]
    )
    assert "API_KEY" in shown
    assert SECRET not in shown
    with store.engine.connect() as conn:  # the raw tables: nowhere in plain text
        for table in (actions, action_versions, action_secrets):
            rows = conn.execute(select(table).where(table.c.tenant == tenant_a)).all()
            assert rows, table.name
            assert SECRET not in repr(rows), table.name
    assert store.actions.secret_values(tenant_a, made.id) == {"API_KEY": SECRET}


def test_secrets_replaced_and_kept_without_a_value(store: ServiceStore, tenant_a: str) -> None:
    made = make(store, tenant_a, secrets=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    store.actions.update(tenant_a, made.id, secrets=[{"name": "A"}, {"name": "C", "value": "3"}])
    assert store.actions.secret_values(tenant_a, made.id) == {"A": "1", "C": "3"}
    with pytest.raises(InvalidInputError):
        store.actions.update(tenant_a, made.id, secrets=[{"name": "NEW"}])


def test_a_change_of_the_secrets_alone_is_a_change_all_deployed(
    store: ServiceStore, tenant_a: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/service.md: secrets are live without a deploy (the deployed version reads the
    stored ones), so changing them alone leaves all_changes_deployed true; it is still a
    change of the action: updated_at moves."""
    made = make(store, tenant_a, secrets=[{"name": "A", "value": "1"}])
    store.actions.deploy(tenant_a, made.id)
    assert store.actions.get(tenant_a, made.id).all_changes_deployed
    later = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)
    monkeypatch.setattr(runtime.store.service.actions, "now", lambda: later)
    changed = store.actions.update(
        tenant_a, made.id, secrets=[{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]
    )
    assert changed.all_changes_deployed
    assert changed.to_api()["updated_at"] == "2031-05-04T03:02:01.000Z"
    assert [s["name"] for s in changed.secrets] == ["A", "B"]
    assert store.actions.get(tenant_a, made.id).all_changes_deployed
    store.actions.update(tenant_a, made.id, code=SPM_CODE + "# later\n")  # code: not deployed
    assert not store.actions.get(tenant_a, made.id).all_changes_deployed


def test_a_bound_action_is_deleted_only_with_force(store: ServiceStore, tenant_a: str) -> None:
    made = make(store, tenant_a)
    store.actions.deploy(tenant_a, made.id)
    store.bindings.replace(
        tenant_a, "send-phone-message", [{"ref": {"type": "action_id", "value": made.id}}]
    )
    with pytest.raises(ConflictError):
        store.actions.delete(tenant_a, made.id)
    store.actions.delete(tenant_a, made.id, force=True)
    assert store.bindings.list(tenant_a, "send-phone-message") == []


def test_every_change_bumps_the_tenant_version(store: ServiceStore, tenant_a: str) -> None:
    seen = [store.tenants.version(tenant_a)]
    made = make(store, tenant_a)
    seen.append(store.tenants.version(tenant_a))
    store.actions.update(tenant_a, made.id, code="")
    seen.append(store.tenants.version(tenant_a))
    store.actions.deploy(tenant_a, made.id)
    seen.append(store.tenants.version(tenant_a))
    store.guardian.set_message_types(tenant_a, ["sms", "voice"])
    seen.append(store.tenants.version(tenant_a))
    assert seen == sorted(set(seen))  # strictly increasing
