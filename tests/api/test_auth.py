"""Bearer tokens: Auth0's 401 messages for a missing, malformed, forged, expired or foreign
token, 403 for a missing scope, and each token bound to its one tenant."""

from __future__ import annotations

import base64
import os
import stat
import time
from pathlib import Path

import jwt
import pytest

from runtime.api.scopes import SCOPES
from runtime.api.tokens import AUDIENCE, ISSUER, SigningKeys, TokenError, key_id
from runtime.errors import ConfigurationError
from tests.api.conftest import Api

SEND = "/api/v2/phone/messages"
BODY = {"to": "+14155552671", "code": "123456"}


def forged(keys: SigningKeys, **claims: object) -> str:
    """A token signed with ``keys``' current key and these claims over the usual ones."""
    now = int(time.time())
    base: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "tenant:x",
        "tenant": "x",
        "scope": "create:phone_messages",
        "iat": now,
        "exp": now + 600,
    }
    base.update(claims)
    key = keys.keys[0]
    return jwt.encode(base, key, algorithm="HS256", headers={"kid": key_id(key)})


def assert_401(api: Api, headers: dict[str, str], message: str) -> None:
    response = api.client.post(SEND, json=BODY, headers=headers)
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["statusCode"] == 401
    assert body["error"] == "Unauthorized"
    assert body["message"] == message
    assert "errorCode" in body
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_no_token_is_401_missing_authentication(api: Api) -> None:
    assert_401(api, {}, "Missing authentication")


def test_a_header_that_is_not_bearer_is_401(api: Api) -> None:
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    assert_401(api, basic, "Bad HTTP authentication header format")


def test_garbage_and_forged_signatures_are_401_invalid_token(api: Api) -> None:
    assert_401(api, {"Authorization": "Bearer not.a.jwt"}, "Invalid token")
    other = SigningKeys((os.urandom(32),))
    token = other.issue(tenant=api.tenant_a, scopes=["create:phone_messages"])
    assert_401(api, {"Authorization": f"Bearer {token}"}, "Invalid token")
    # same kid, another key: the signature check, not the kid, refuses it
    mine = SigningKeys.from_settings(api.settings)
    good = mine.issue(tenant=api.tenant_a, scopes=["create:phone_messages"])
    header, payload, _signature = good.split(".")
    assert_401(api, {"Authorization": f"Bearer {header}.{payload}.AAAA"}, "Invalid token")


def test_alg_none_is_401(api: Api) -> None:
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "tenant": api.tenant_a, "scope": "x"},
        key="",
        algorithm="none",
    )
    assert_401(api, {"Authorization": f"Bearer {token}"}, "Invalid token")


def test_expired_token_is_401_with_auth0s_message(api: Api) -> None:
    keys = SigningKeys.from_settings(api.settings)
    past = int(time.time()) - 3600
    token = forged(keys, tenant=api.tenant_a, iat=past - 60, exp=past)
    assert_401(
        api,
        {"Authorization": f"Bearer {token}"},
        "Expired token received for JSON Web Token validation",
    )


def test_wrong_audience_is_401_bad_audience(api: Api) -> None:
    keys = SigningKeys.from_settings(api.settings)
    token = forged(keys, tenant=api.tenant_a, aud="https://example.auth0.com/api/v2/")
    assert_401(
        api, {"Authorization": f"Bearer {token}"}, "Bad audience: https://example.auth0.com/api/v2/"
    )


def test_missing_scope_is_403_naming_the_scope(api: Api) -> None:
    response = api.client.post(SEND, json=BODY, headers=api.auth(None, "read:actions"))
    assert response.status_code == 403
    assert response.json() == {
        "statusCode": 403,
        "error": "Forbidden",
        "message": "Insufficient scope, expected any of: create:phone_messages",
        "errorCode": "insufficient_scope",
    }


def test_a_token_acts_for_its_own_tenant_only(api: Api) -> None:
    """The body cannot name another tenant: the tenant is the token's."""
    headers = api.auth(api.tenant_b, "create:phone_messages")
    response = api.client.post(SEND, json={**BODY, "tenant": api.tenant_a}, headers=headers)
    assert response.status_code == 400
    assert "tenant" in response.json()["message"]
    response = api.client.post(SEND, json=BODY, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["tenant"] == api.tenant_b


def test_a_token_for_a_tenant_that_does_not_exist_is_404(api: Api) -> None:
    headers = api.auth("no-such-tenant", "create:phone_messages")
    response = api.client.post(SEND, json=BODY, headers=headers)
    assert response.status_code == 404
    assert response.json()["errorCode"] == "inexistent_tenant"


GHOST_CALLS = [
    ("GET", "/api/v2/actions/actions", None),  # lists were 200 and empty
    ("GET", "/api/v2/guardian/factors/phone/message-types", None),  # were the defaults
    ("GET", "/api/v2/branding/phone/providers", None),
    ("GET", "/api/v2/phone/outbox", None),
    ("GET", "/api/v2/logs", None),
    ("GET", "/api/v2/actions/triggers/send-phone-message/bindings", None),
    ("GET", "/api/v2/attack-protection/phone-limits", None),  # were 404 not_found
    ("PATCH", "/api/v2/phone/settings", {}),
    ("POST", "/api/v2/actions/actions", {"name": "a", "supported_triggers": [{"id": "x"}]}),
    ("GET", "/api/v2/log-streams", None),
    ("POST", "/api/v2/phone/enrollments", {"user_id": "u", "phone_number": "+14155552671"}),
    ("POST", SEND, BODY),  # was already inexistent_tenant
]


@pytest.mark.parametrize(("method", "path", "body"), GHOST_CALLS, ids=[c[1] for c in GHOST_CALLS])
def test_every_route_answers_a_token_of_a_tenant_that_does_not_exist_alike(
    api: Api, method: str, path: str, body: dict[str, object] | None
) -> None:
    """docs/service.md, Errors: a token signed with the real key for a tenant the database
    does not have is 404 inexistent_tenant on every route, whatever it would read or change
    (not 200 with nothing in it, not not_found "no tenant ...")."""
    headers = api.auth("ghost-tenant", *SCOPES)
    response = api.client.request(method, path, json=body, headers=headers)
    assert response.status_code == 404, response.text
    assert response.json() == {
        "statusCode": 404,
        "error": "Not Found",
        "message": "The tenant of this token does not exist.",
        "errorCode": "inexistent_tenant",
    }
    mine = api.client.request(method, path, json=body, headers=api.auth(api.tenant_a, *SCOPES))
    assert "inexistent_tenant" not in mine.text, mine.text


# -- the signing key ------------------------------------------------------------------------


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    first = SigningKeys.load(None, tmp_path)
    path = tmp_path / "signing.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKeys.load(None, tmp_path) == first  # the second start reads the same key


def test_a_key_file_others_can_read_stops_the_start(tmp_path: Path) -> None:
    SigningKeys.load(None, tmp_path)
    (tmp_path / "signing.key").chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        SigningKeys.load(None, tmp_path)


def test_a_short_key_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    short = base64.b64encode(os.urandom(16)).decode()
    with pytest.raises(ConfigurationError, match="PHONE_ACTIONS_SIGNING_KEY: key 1 is not base64"):
        SigningKeys.load(short, tmp_path)


def test_rotation_new_key_signs_old_tokens_still_verify(tmp_path: Path) -> None:
    old_key, new_key = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
    old = SigningKeys.load(old_key, tmp_path)
    rotated = SigningKeys.load(f"{new_key},{old_key}", tmp_path)
    before = old.issue(tenant="acme", scopes=["read:actions"])
    after = rotated.issue(tenant="acme", scopes=["read:actions"])
    assert rotated.verify(before).tenant == "acme"
    assert rotated.verify(after).scopes == {"read:actions"}
    with pytest.raises(TokenError, match="Invalid token"):
        old.verify(after)  # a node that does not have the new key yet
    dropped = SigningKeys.load(new_key, tmp_path)
    with pytest.raises(TokenError, match="Invalid token"):
        dropped.verify(before)


def test_scope_claim_is_auth0s_space_separated_string(tmp_path: Path) -> None:
    keys = SigningKeys.load(None, tmp_path)
    token = keys.issue(tenant="acme", scopes=["read:actions", "update:actions"])
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["scope"] == "read:actions update:actions"
    assert claims["tenant"] == "acme"
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert "create:phone_messages" in SCOPES
