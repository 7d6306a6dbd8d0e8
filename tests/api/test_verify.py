"""The Verify API through HTTP: enroll a phone, confirm it, challenge it, verify the code.

On SQLite and PostgreSQL (the ``api`` fixture); tenants without a provider of their own send
through the default sender (the outbox, read back here for the code the user would receive).
The code never appears in an answer or a log line; wrong codes stop at the attempt limit; a
retried request with its idempotency key sends one code.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from plugins.outbox import OutboxProvider
from tests.api.conftest import Api
from tests.api.limits_down import api_without_redis

ENROLL = "/api/v2/phone/enrollments"
CHALLENGE = "/api/v2/phone/challenges"
SCOPES = ("create:phone_enrollments", "create:phone_challenges")
PHONE = "+14155552671"


def h(api: Api, tenant: str | None = None, **extra: str) -> dict[str, str]:
    return {**api.auth(tenant, *SCOPES), **extra}


def texts(api: Api, tenant: str) -> list[str]:
    return [m.text for m in OutboxProvider(api.settings.resolved_database_url).messages(tenant)]


def last_code(api: Api, tenant: str) -> str:
    found = re.search(r"\b(\d{6})\b", texts(api, tenant)[-1])
    assert found, texts(api, tenant)[-1]
    return found.group(1)


def events(api: Api, tenant: str) -> list[dict[str, Any]]:
    path = Path(api.settings.resolved_log_file)
    lines = path.read_bytes().splitlines() if path.exists() else []
    return [e for e in map(orjson.loads, lines) if e.get("tenant_name") == tenant]


def ok(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def new_verify_tenant(api: Api) -> str:
    """A tenant of this test only (its limits are its own)."""
    from tests.api.conftest import create_tenants, new_tenant

    tenant = new_tenant()
    create_tenants(api.settings, tenant)
    return tenant


def enroll(api: Api, tenant: str, user: str, **extra: Any) -> dict[str, Any]:
    body = {"user_id": user, "phone_number": PHONE, "channel": "sms", **extra}
    return ok(api.client.post(ENROLL, json=body, headers=h(api, tenant)), 201)


def enrolled(api: Api, tenant: str, user: str) -> dict[str, Any]:
    """A user with a confirmed phone."""
    made = enroll(api, tenant, user)
    url = f"{ENROLL}/{made['id']}/confirm"
    return ok(
        api.client.post(url, json={"code": last_code(api, tenant)}, headers=h(api, tenant)), 200
    )


def test_enrollment_then_challenge_end_to_end(api: Api, tmp_path: Path) -> None:
    tenant, user = api.tenant_a, "auth0|e2e"
    made = enroll(api, tenant, user)
    assert made["id"].startswith("pen_")
    assert (made["status"], made["phone_number"], made["channel"]) == ("pending", PHONE, "sms")
    assert made["delivery"]["status"] == "stored"  # the outbox: no provider configured
    code = last_code(api, tenant)
    assert code not in orjson.dumps(made).decode()
    assert "Please enter this code to verify your enrollment" in texts(api, tenant)[-1]

    confirm = f"{ENROLL}/{made['id']}/confirm"
    wrong = "000000" if code != "000000" else "111111"
    refused = api.client.post(confirm, json={"code": wrong}, headers=h(api, tenant))
    assert refused.status_code == 403
    assert refused.json()["errorCode"] == "invalid_code"
    assert "4 attempts left" in refused.json()["message"]
    done = ok(api.client.post(confirm, json={"code": code}, headers=h(api, tenant)), 200)
    assert done["status"] == "confirmed"
    assert done["confirmed_at"]
    again = api.client.post(confirm, json={"code": code}, headers=h(api, tenant))
    assert (again.status_code, again.json()["errorCode"]) == (409, "used_code")

    challenge = ok(api.client.post(CHALLENGE, json={"user_id": user}, headers=h(api, tenant)), 201)
    assert challenge["enrollment_id"] == made["id"]
    assert challenge["phone_number"] == PHONE
    second = last_code(api, tenant)
    assert "Please enter" not in texts(api, tenant)[-1]  # the verification template
    url = f"{CHALLENGE}/{challenge['id']}/verify"
    verified = ok(api.client.post(url, json={"code": second}, headers=h(api, tenant)), 200)
    assert verified["status"] == "verified"
    reused = api.client.post(url, json={"code": second}, headers=h(api, tenant))
    assert reused.status_code == 409

    kinds = [e["type"] for e in events(api, tenant) if e["user_id"] == user]
    for kind in (
        "gd_start_enroll",
        "gd_auth_failed",
        "gd_enrollment_complete",
        "gd_start_auth",
        "gd_auth_succeed",
    ):
        assert kind in kinds, kinds
    assert kinds.index("gd_start_enroll") < kinds.index("gd_enrollment_complete")
    assert kinds.index("gd_start_auth") < kinds.index("gd_auth_succeed")
    # 32 hex digits: the events' random ids, which hold a code by chance now and then
    log = re.sub(r"[0-9a-f]{32}", "", Path(api.settings.resolved_log_file).read_text())
    assert code not in log
    assert second not in log


def test_a_check_the_database_takes_after_its_deadline_still_logs_its_event(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database took the check only after the route had answered 503 (a lock held until
    just before its timeout): the code is used, so its event is written all the same."""
    tenant, user = api.tenant_a, f"auth0|late-{uuid.uuid4().hex[:8]}"
    made = enroll(api, tenant, user)
    code = last_code(api, tenant)
    service = api.client.app.state.verify  # type: ignore[attr-defined]
    real_check, release = service.store.check, threading.Event()

    def answering_late(*args: Any) -> Any:  # the real check, after the route's deadline
        release.wait(30)
        return real_check(*args)

    monkeypatch.setattr(service.store, "check", answering_late)
    confirm = f"{ENROLL}/{made['id']}/confirm"
    late = api.client.post(confirm, json={"code": code}, headers=h(api, tenant))
    assert (late.status_code, late.json()["errorCode"]) == (503, "store_unavailable")
    release.set()  # the check commits now, with nobody waiting for it

    def completed() -> bool:
        return any(
            e["type"] == "gd_enrollment_complete" and e["user_id"] == user
            for e in events(api, tenant)
        )

    deadline = time.monotonic() + 30
    while not completed() and time.monotonic() < deadline:
        threading.Event().wait(0.02)  # the late check's accounting runs on the app's loop
    assert completed()
    monkeypatch.undo()
    again = api.client.post(confirm, json={"code": code}, headers=h(api, tenant))
    assert (again.status_code, again.json()["errorCode"]) == (409, "used_code")


def test_the_ip_rule_counts_the_end_users_address_as_given_never_the_callers(api: Api) -> None:
    """A backend calls the Verify API for all its users: its own address is not theirs. The
    ip rule counts the address the body gives, and only that."""
    tenant = new_verify_tenant(api)
    limits = api.auth(tenant, "update:attack_protection")
    patched = api.client.patch(
        "/api/v2/attack-protection/phone-limits",
        json={"ip": "2/hour", "user_requests": None},
        headers=limits,
    )
    assert patched.status_code == 200, patched.text
    for n in range(3):  # three users behind one backend: none is limited by its address
        enroll(api, tenant, f"auth0|backend-{n}")
    body = {"phone_number": PHONE, "channel": "sms", "ip": "203.0.113.9"}
    for n in range(2):
        ok(
            api.client.post(
                ENROLL, json={**body, "user_id": f"auth0|ip-{n}"}, headers=h(api, tenant)
            ),
            201,
        )
    third = api.client.post(ENROLL, json={**body, "user_id": "auth0|ip-2"}, headers=h(api, tenant))
    assert (third.status_code, third.json()["errorCode"]) == (429, "rate_limited")
    assert "203.0.113.9" in third.json()["message"]
    wrong = api.client.post(
        ENROLL, json={**body, "user_id": "x", "ip": "not-an-ip"}, headers=h(api, tenant)
    )
    assert wrong.status_code == 400
    assert "property ip" in wrong.json()["message"]


def test_five_wrong_codes_kill_the_code_even_the_right_one(api: Api) -> None:
    tenant = api.tenant_a
    made = enroll(api, tenant, "auth0|guesser")
    code = last_code(api, tenant)
    wrong = "000000" if code != "000000" else "111111"
    url = f"{ENROLL}/{made['id']}/confirm"
    statuses = [
        api.client.post(url, json={"code": wrong}, headers=h(api, tenant)).status_code
        for _ in range(5)
    ]
    assert statuses == [403] * 5
    last = api.client.post(url, json={"code": code}, headers=h(api, tenant))
    assert (last.status_code, last.json()["errorCode"]) == (429, "too_many_attempts")
    # the log events say what the API said
    failed = [
        e["details"]
        for e in events(api, tenant)
        if e["type"] == "gd_auth_failed" and e["details"].get("enrollment_id") == made["id"]
    ]
    assert [d["failure_details"]["errorCode"] for d in failed] == ["invalid_code"] * 5 + [
        "too_many_attempts"
    ]
    assert [d["attempts_left"] for d in failed] == [4, 3, 2, 1, 0, 0]


def test_the_same_idempotency_key_sends_one_code(api: Api) -> None:
    tenant = api.tenant_a
    before = len(texts(api, tenant))
    body = {"user_id": "auth0|retry", "phone_number": PHONE, "idempotency_key": "enroll-1"}
    first = ok(api.client.post(ENROLL, json=body, headers=h(api, tenant)), 201)
    second = ok(api.client.post(ENROLL, json=body, headers=h(api, tenant)), 201)
    assert second["id"] == first["id"], (first, texts(api, tenant))
    assert second["replayed"] is True
    assert second["delivery"] == first["delivery"]
    assert len(texts(api, tenant)) == before + 1, (first["delivery"], first["status"])
    other = {**body, "phone_number": "+14155552672"}
    reused = api.client.post(ENROLL, json=other, headers=h(api, tenant))
    assert reused.status_code == 409
    # the header works as well
    headers = h(api, tenant, **{"Idempotency-Key": "enroll-2"})
    plain = {"user_id": "auth0|retry", "phone_number": PHONE}
    a = ok(api.client.post(ENROLL, json=plain, headers=headers), 201)
    b = ok(api.client.post(ENROLL, json=plain, headers=headers), 201)
    assert a["id"] == b["id"]
    assert len(texts(api, tenant)) == before + 2


def crash_left(api: Api, tenant: str, enrollment: str) -> None:
    """What a process killed with the enrollment's code at the provider leaves: no delivery
    kept on the row, and the delivery's claim pending, made an hour ago."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from runtime.otp.service import delivery_key
    from runtime.store import create_engine_for
    from runtime.store.schema import idempotency_records, phone_enrollments

    engine = create_engine_for(api.settings.resolved_database_url)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(
            update(phone_enrollments)
            .where(phone_enrollments.c.id == enrollment)
            .values(delivery=None)
        )
        conn.execute(
            update(idempotency_records)
            .where(
                idempotency_records.c.tenant == tenant,
                idempotency_records.c.key == delivery_key(enrollment),
            )
            .values(report=None, created_at=long_ago)
        )
    engine.dispose()


def test_an_enrollment_whose_delivery_a_crash_interrupted_is_accounted_for_once(api: Api) -> None:
    """The process died with the code at the provider: the row has no delivery and the key's
    claim stays pending. Once older than the delivery budget, the caller's retry accounts for
    it at once (never waits, never sends again): outcome_unknown on the row and one event."""
    tenant, user = api.tenant_a, f"auth0|crash-{uuid.uuid4().hex[:8]}"
    body = {"user_id": user, "phone_number": PHONE, "idempotency_key": f"k-{user}"}
    made = ok(api.client.post(ENROLL, json=body, headers=h(api, tenant)), 201)
    sent = len(texts(api, tenant))
    crash_left(api, tenant, made["id"])
    started = time.monotonic()
    retried = api.client.post(ENROLL, json=body, headers=h(api, tenant))
    assert time.monotonic() - started < api.settings.idempotency_wait  # not waited for
    # as any delivery that failed: 502, the delivery's reason as errorCode
    assert (retried.status_code, retried.json()["errorCode"]) == (502, "outcome_unknown")
    again = api.client.post(ENROLL, json=body, headers=h(api, tenant))
    assert again.json() == retried.json()
    assert len(texts(api, tenant)) == sent  # never sent again
    unknown = [
        e
        for e in events(api, tenant)
        if e["user_id"] == user
        and e["details"].get("failure_details", {}).get("errorCode") == "outcome_unknown"
    ]
    assert len(unknown) == 1, unknown
    # the sweep of claims a crash left pending finds this one accounted for: no second event
    services = api.client.app.state.services  # type: ignore[attr-defined]
    assert api.client.portal is not None
    assert api.client.portal.call(services.pipeline.stale_claims.sweep) == 0
    assert len([e for e in events(api, tenant) if e["user_id"] == user and e in unknown]) == 1


def test_an_interrupted_delivery_nobody_retries_is_logged_by_the_sweep_once(api: Api) -> None:
    """The process died with the code at the provider and the caller never came back: the
    pipeline's sweep logs the delivery as outcome_unknown, once (a second sweep, and a late
    retry, add nothing)."""
    from runtime.otp.service import delivery_key

    tenant, user = api.tenant_a, f"auth0|swept-{uuid.uuid4().hex[:8]}"
    body = {"user_id": user, "phone_number": PHONE, "idempotency_key": f"k-{user}"}
    made = ok(api.client.post(ENROLL, json=body, headers=h(api, tenant)), 201)
    sent = len(texts(api, tenant))
    crash_left(api, tenant, made["id"])
    services = api.client.app.state.services  # type: ignore[attr-defined]
    assert api.client.portal is not None
    assert api.client.portal.call(services.pipeline.stale_claims.sweep) >= 1
    assert api.client.portal.call(services.pipeline.stale_claims.sweep) == 0

    def unknown() -> list[dict[str, Any]]:
        return [
            e
            for e in events(api, tenant)
            if e["user_name"] == PHONE
            and e["details"].get("failure_details", {}).get("errorCode") == "outcome_unknown"
            and delivery_key(made["id"]) in e["details"]["failure_details"]["message"]
        ]

    assert len(unknown()) == 1, unknown()
    retried = api.client.post(ENROLL, json=body, headers=h(api, tenant))
    assert (retried.status_code, retried.json()["errorCode"]) == (502, "outcome_unknown")
    assert len(unknown()) == 1  # the retry found it accounted for
    assert len(texts(api, tenant)) == sent  # never sent again


@pytest.mark.parametrize(
    ("headers", "user_locale", "expected"),
    [
        ({"x-request-language": "fr-CA"}, None, "est votre code de vérification"),
        ({"Accept-Language": "de;q=0.9, es;q=0.95, *;q=0.1"}, None, "es su código"),
        ({}, "de_DE", "ist Ihr Bestätigungscode"),
        ({"x-request-language": "!!"}, None, "is your verification code"),
    ],
)
def test_the_message_language_follows_the_request(
    api: Api, headers: dict[str, str], user_locale: str | None, expected: str
) -> None:
    tenant = api.tenant_b
    body: dict[str, Any] = {"user_id": "auth0|lang", "phone_number": PHONE}
    if user_locale:
        body["locale"] = user_locale
    ok(api.client.post(ENROLL, json=body, headers=h(api, tenant, **headers)), 201)
    assert expected in texts(api, tenant)[-1]


def test_a_challenge_needs_a_confirmed_enrollment(api: Api) -> None:
    tenant = api.tenant_a
    enroll(api, tenant, "auth0|unconfirmed")
    missing = api.client.post(CHALLENGE, json={"user_id": "auth0|unconfirmed"}, headers=h(api))
    assert missing.status_code == 404
    assert missing.json()["message"] == "The user has no confirmed phone enrollment."


def test_scopes_and_tenants_are_kept_apart(api: Api) -> None:
    made = enroll(api, api.tenant_a, "auth0|mine")
    code = last_code(api, api.tenant_a)
    url = f"{ENROLL}/{made['id']}/confirm"
    other = api.client.post(url, json={"code": code}, headers=h(api, api.tenant_b))
    assert other.status_code == 404  # another tenant's enrollment does not exist for it
    no_scope = api.auth(api.tenant_a, "create:phone_challenges")
    refused = api.client.post(url, json={"code": code}, headers=no_scope)
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        "Insufficient scope, expected any of: create:phone_enrollments"
    )
    assert ok(api.client.post(url, json={"code": code}, headers=h(api)), 200)["status"] == (
        "confirmed"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u", "phone_number": "12"}, "phone_number"),
        ({"user_id": "u", "phone_number": PHONE, "channel": "fax"}, "channel"),
        ({"phone_number": PHONE}, "user_id"),
        ({"user_id": "u", "phone_number": PHONE, "extra": 1}, "extra"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    response = api.client.post(ENROLL, json=body, headers=h(api))
    assert response.status_code == 400
    message = response.json()["message"]
    assert field in message
    assert "\n" not in message
    assert "Traceback" not in message


def test_a_code_that_is_not_digits_is_refused_naming_it(api: Api) -> None:
    made = enroll(api, api.tenant_a, "auth0|typo")
    response = api.client.post(
        f"{ENROLL}/{made['id']}/confirm", json={"code": "12ab56"}, headers=h(api)
    )
    assert response.status_code == 400
    assert "code" in response.json()["message"]


def test_the_sixth_code_request_in_five_minutes_is_429_with_retry_after(api: Api) -> None:
    """Auth0's default of 5 OTP requests per user per 5 minutes (docs/abuse_protection.md):
    the refusal is an error with the delivery's reason, and no code reaches the outbox."""
    tenant, user = api.tenant_b, f"auth0|burst-{uuid.uuid4().hex[:6]}"
    body = {"user_id": user, "phone_number": PHONE}
    for _ in range(5):
        ok(api.client.post(ENROLL, json=body, headers=h(api, tenant)), 201)
    sent = len(texts(api, tenant))
    refused = api.client.post(ENROLL, json=body, headers=h(api, tenant))
    assert refused.status_code == 429, refused.text
    assert refused.json()["errorCode"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert len(texts(api, tenant)) == sent
    made = [e for e in events(api, tenant) if e["user_id"] == user]
    assert [e["type"] for e in made].count("gd_start_enroll") == 6  # the refused one too


def test_rate_limits_that_cannot_be_checked_are_503_with_retry_after(tmp_path: Path) -> None:
    """Redis down with limits_on_redis_error=closed: no code, a 503 the caller may retry."""
    with api_without_redis(tmp_path) as down:
        body = {"user_id": "auth0|no-redis", "phone_number": PHONE}
        refused = down.client.post(ENROLL, json=body, headers=h(down, down.tenant_a))
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["errorCode"] == "limits_unavailable"
        assert "could not be checked" in refused.json()["message"]
        assert texts(down, down.tenant_a) == []


def test_country_and_number_type_refusals_are_403_without_retry_after(api: Api) -> None:
    tenant = api.tenant_a
    body = {"user_id": "auth0|premium", "phone_number": "+19002345678"}
    refused = api.client.post(ENROLL, json=body, headers=h(api, tenant))
    assert refused.status_code == 403, refused.text
    assert refused.json()["errorCode"] == "number_type_blocked"
    assert "Retry-After" not in refused.headers
