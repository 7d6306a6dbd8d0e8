"""GET /api/v2/phone/outbox: what the outbox default sender holds for the token's tenant,
newest first and paged, with the evaluation cap used; the code and the recipient's number
never come back whole (the operator's ``phone-actions outbox`` shows them). Scope
``read:phone_messages``, tenant isolation. On SQLite and PostgreSQL (the ``api`` fixture)."""

from __future__ import annotations

from typing import Any

from runtime.api.routers.outbox import mask_recipient, mask_text
from runtime.store.service import ServiceStore
from tests.api.conftest import Api, new_tenant
from tests.api.test_guardian import assert_error

OUTBOX = "/api/v2/phone/outbox"
SEND = "/api/v2/phone/messages"
READ = "read:phone_messages"


def send(api: Api, tenant: str, code: str, to: str = "+14155552671") -> None:
    headers = api.auth(tenant, "create:phone_messages")
    response = api.client.post(SEND, json={"to": to, "code": code}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "stored"


def held(api: Api, tenant: str, **query: Any) -> dict[str, Any]:
    response = api.client.get(OUTBOX, params=query, headers=api.auth(tenant, READ))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_messages_come_newest_first_masked_with_the_cap_used(
    api: Api,
    store: ServiceStore,
) -> None:
    tenant = store.tenants.create(new_tenant()).id
    assert held(api, tenant) == {"messages": [], "cap": 100, "used": 0}
    send(api, tenant, "246810")
    send(api, tenant, "1357", to="+447911123456")
    body = held(api, tenant)
    assert (body["cap"], body["used"]) == (100, 2)
    first, second = body["messages"]
    assert set(first) == {"id", "recipient", "channel", "text", "created_at"}
    assert first["recipient"] == "+••••••••3456"
    assert second["recipient"] == "+•••••••2671"
    assert first["channel"] == "sms"
    assert first["text"].startswith("•••• is your verification code")
    assert second["text"].startswith("•••••• is your verification code")
    shown = str([{k: v for k, v in m.items() if k != "id"} for m in body["messages"]])
    assert "246810" not in shown  # (a random hex id may hold any four digits: not looked at)
    assert "1357" not in shown
    assert first["created_at"] >= second["created_at"]


def test_pages_and_totals_as_the_logs_api(api: Api, store: ServiceStore) -> None:
    tenant = store.tenants.create(new_tenant()).id
    for code in ("111111", "222222", "333333"):
        send(api, tenant, code)
    ids = [m["id"] for m in held(api, tenant)["messages"]]
    page = held(api, tenant, page=1, per_page=2, include_totals="true")
    assert [m["id"] for m in page["messages"]] == ids[2:]
    assert (page["start"], page["limit"], page["length"], page["total"]) == (2, 2, 1, 3)
    assert "total" not in held(api, tenant, per_page=2)
    bad = api.client.get(OUTBOX, params={"per_page": 0}, headers=api.auth(tenant, READ))
    assert_error(bad, 400, "per_page")


def test_scope_and_tenant(api: Api) -> None:
    send(api, api.tenant_a, "864209")
    assert_error(api.client.get(OUTBOX), 401)
    other = api.auth(api.tenant_a, "create:phone_messages", "read:logs")
    assert_error(api.client.get(OUTBOX, headers=other), 403, READ)
    mine = held(api, api.tenant_a)["messages"]
    assert mine
    theirs = held(api, api.tenant_b)["messages"]
    assert not {m["id"] for m in mine} & {m["id"] for m in theirs}


def test_masks() -> None:
    assert mask_text("Code 123456, call 555-1234 or 12 34") == "Code ••••••, call •••••••• or •••••"
    assert mask_text("1. 2. 3. 4. 5. 6") == "••••••••••••••••"
    assert mask_text("id 123 ok") == "id 123 ok"
    assert mask_recipient("+14155552671") == "+•••••••2671"
    assert mask_recipient("123") == "123"


def test_codes_with_letters_never_come_back(api: Api, store: ServiceStore) -> None:
    """Codes are 4 to 12 letters and digits: the outbox keeps each message's code, so even a
    code of letters only (a pattern could not tell it from a word) reads as bullets."""
    tenant = store.tenants.create(new_tenant()).id
    for code in ("A7K9Q2", "qzxw", "Zz9Zz9Zz9Zz9"):
        send(api, tenant, code)
    body = held(api, tenant)
    texts = [m["text"] for m in body["messages"]]
    assert texts[0].startswith("•••••••••••• is your verification code"), texts
    assert texts[1].startswith("•••• is your verification code"), texts
    assert texts[2].startswith("•••••• is your verification code"), texts
    for code in ("A7K9Q2", "qzxw", "Zz9Zz9Zz9Zz9"):
        assert code.lower() not in str(body).lower()


def test_masks_know_the_code_and_what_looks_like_one() -> None:
    assert mask_text("abcd is your code", "abcd") == "•••• is your code"
    assert mask_text("Say A B C D, or a-b-c-d.", "abcd") == "Say •••••••, or •••••••."
    assert mask_text("Your code: 1, 2, 3, 4.", "1234") == "Your code: ••••••••••."
    # rows stored before the code was kept: words of letters and digits holding a digit
    assert mask_text("A7K9Q2 is your code") == "•••••• is your code"
    assert mask_text("version v2 of 9 tests, id 123") == "version v2 of 9 tests, id 123"
