"""``GET /api/v2/actions/triggers/{trigger}/sample``: the event an action's Test tab starts from
(the console prefills it), as the caller's tenant, and accepted as is by the test endpoint
(SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from runtime.api.sample_events import SAMPLE_EVENTS
from runtime.events import parse_event
from tests.api.conftest import Api
from tests.api.test_actions import ACTIONS, assert_error, create
from tests.support.events import load_event

TRIGGERS = "/api/v2/actions/triggers"
FILES = {"send-phone-message": "spm_sms_verify_us", "custom-phone-provider": "cpp_text_verify_au"}


@pytest.mark.parametrize("trigger", sorted(FILES))
def test_the_sample_is_the_recorded_event_as_the_callers_tenant(api: Api, trigger: str) -> None:
    response = api.client.get(
        f"{TRIGGERS}/{trigger}/sample", headers=api.auth(api.tenant_b, "read:actions")
    )
    assert response.status_code == 200, response.text
    sample = response.json()
    recorded = load_event(FILES[trigger])
    recorded.pop("secrets")  # placeholders: a test run adds the action's stored secrets
    recorded["tenant"]["id"] = api.tenant_b
    assert sample == recorded
    assert parse_event(sample).trigger == trigger
    assert SAMPLE_EVENTS[trigger]["tenant"]["id"] == "acme"  # the caller's copy, not the module's


def test_the_sample_runs_as_is_in_the_action_test(api: Api) -> None:
    code = (
        "def on_execute_send_phone_message(event, api):\n"
        "    print('to ' + event['message_options']['recipient'])\n"
        "    return event['tenant']['id']\n"
    )
    action = create(api, code=code, secrets=[])
    sample = api.client.get(
        f"{TRIGGERS}/send-phone-message/sample", headers=api.auth(None, "read:actions")
    ).json()
    response = api.client.post(
        f"{ACTIONS}/{action['id']}/test",
        json={"payload": sample},
        headers=api.auth(None, "create:actions"),
    )
    assert response.status_code == 200, response.text
    payload = response.json()["payload"]
    assert payload["outcome"] == "ok", payload
    assert payload["logs"] == ["to +14155552671"]
    assert payload["result"] == api.tenant_a


def test_unknown_trigger_missing_token_and_scope(api: Api) -> None:
    assert_error(
        api.client.get(f"{TRIGGERS}/post-login/sample", headers=api.auth(None, "read:actions")),
        404,
        "post-login",
    )
    assert_error(api.client.get(f"{TRIGGERS}/send-phone-message/sample"), 401)
    assert_error(
        api.client.get(
            f"{TRIGGERS}/send-phone-message/sample", headers=api.auth(None, "create:actions")
        ),
        403,
        "read:actions",
    )
