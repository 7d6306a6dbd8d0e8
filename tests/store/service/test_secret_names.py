"""One rule for an action secret's name: a name the Management API stores is one a tenants
file may give (``credentials_env``) and the sandbox runs with, and a name one refuses the
others refuse too."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from plugins.custom_action import ActionSecrets
from runtime.errors import InvalidInputError, LimitExceededError
from runtime.store.service import ServiceStore
from tests.store.service.conftest import SPM, SPM_CODE

ACCEPTED = ["SMS_KEY", "sms_key", "Sms_Url", "_from", "K" * 128]
REFUSED = ["1ST", "SMS-KEY", "sms key", "KEY\n", "", "K" * 129, "clé"]


@pytest.mark.parametrize("name", ACCEPTED)
def test_a_name_the_api_stores_is_one_a_tenants_file_may_give(
    store: ServiceStore, tenant_a: str, name: str
) -> None:
    secrets = [{"name": name, "value": "v-1234"}]
    made = store.actions.create(
        tenant_a, name="a", supported_triggers=SPM, code=SPM_CODE, secrets=secrets
    )
    assert [s["name"] for s in made.secrets] == [name]
    assert ActionSecrets.model_validate({name: "v-1234"}).as_dict() == {name: "v-1234"}


@pytest.mark.parametrize("name", REFUSED)
def test_a_name_the_api_refuses_a_tenants_file_refuses_too(
    store: ServiceStore, tenant_a: str, name: str
) -> None:
    with pytest.raises((InvalidInputError, LimitExceededError)) as caught:
        store.actions.create(
            tenant_a,
            name="a",
            supported_triggers=SPM,
            code=SPM_CODE,
            secrets=[{"name": name, "value": "v"}],
        )
    assert caught.value.field == "secrets.0.name"
    with pytest.raises(ValidationError, match="secret name"):
        ActionSecrets.model_validate({name: "v"})
