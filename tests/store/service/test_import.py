"""``phone-actions tenants import``: a tenants file of the TOML format into the database."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from plugins.outbox import OutboxProvider
from runtime.api.app import create_app
from runtime.api.tokens import SigningKeys
from runtime.cli import app
from runtime.errors import ConfigurationError
from runtime.policy import PhoneLimits
from runtime.store import create_engine_for
from runtime.store.crypto import Keyring
from runtime.store.schema import guardian_phone, tenants
from runtime.store.service import ServiceStore
from runtime.store.service.importer import import_tenants
from runtime.store.tenant_config import tenant_config
from tests.api.conftest import api_settings
from tests.store.service.conftest import SPM_CODE

ROOT = Path(__file__).resolve().parents[3]
SID = "AC" + "b" * 32
TOKEN = "acme-token-never-plain-91c"
LIMITS = "/api/v2/attack-protection/phone-limits"
MESSAGES = "/api/v2/phone/messages"


def test_import_of_the_example_file(tmp_path: Path) -> None:
    env = {
        "PHONE_ACTIONS_DATA_DIR": str(tmp_path / "data"),
        "ACME_TWILIO_ACCOUNT_SID": SID,
        "ACME_TWILIO_AUTH_TOKEN": TOKEN,
    }
    runner = CliRunner()
    args = ["tenants", "import", str(ROOT / "docs/examples/tenants.toml"), "--json"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert {(t["tenant"], t["created"]) for t in json.loads(result.output)} == {
        ("acme", True),
        ("demo", True),
    }
    again = runner.invoke(app, args, env=env)  # a second run updates
    assert {t["created"] for t in json.loads(again.output)} == {False}

    engine = create_engine_for(f"sqlite:///{tmp_path / 'data' / 'phone-actions.sqlite3'}")
    store = ServiceStore(engine, Keyring.load(None, tmp_path / "data"))
    try:
        demo, _ = tenant_config(store, "demo")
        assert (demo.provider, demo.friendly_name) == ("outbox", "Demo")
        acme, credentials = tenant_config(store, "acme")
        assert acme.provider == "twilio"
        assert acme.provider_settings == {"from_number": "+15017122661"}
        assert acme.message_types == frozenset({"sms", "voice"})
        assert credentials == {"account_sid": SID, "auth_token": TOKEN}
        assert store.guardian.selected_provider("acme") == "twilio"
        with engine.connect() as conn:
            raw = repr(conn.execute(select(tenants)).all())
            raw += repr(conn.execute(select(guardian_phone)).all())
        assert TOKEN not in raw
    finally:
        engine.dispose()


def test_missing_credentials_are_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    env = {"PHONE_ACTIONS_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(
        app, ["tenants", "import", str(ROOT / "docs/examples/tenants.toml")], env=env
    )
    assert result.exit_code == 2
    assert "ACME_TWILIO_AUTH_TOKEN" in result.output
    assert "Traceback" not in result.output
    engine = create_engine_for(f"sqlite:///{tmp_path / 'data' / 'phone-actions.sqlite3'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(select(tenants)).all() == []
    finally:
        engine.dispose()


def test_action_scripts_become_deployed_bound_actions(tmp_path: Path, store: ServiceStore) -> None:
    hook, custom = f"h-{uuid.uuid4().hex[:12]}", f"c-{uuid.uuid4().hex[:12]}"
    (tmp_path / "send.py").write_text(SPM_CODE)
    (tmp_path / "cpp.py").write_text(
        "def on_execute_custom_phone_provider(event, api):\n    return 'ok'\n"
    )
    path = tmp_path / "tenants.toml"
    path.write_text(
        f"""
[tenants.{hook}]
provider = "phone-message-hook"
provider_settings = {{ script = "send.py" }}
credentials_env = {{ API_KEY = "HOOK_API_KEY" }}

[tenants.{custom}]
provider = "custom"
message_types = ["sms", "voice"]
provider_settings = {{ script = "{tmp_path / "cpp.py"}", name = "my-cpp" }}
"""
    )
    done = import_tenants(store, path, environ={"HOOK_API_KEY": "k-123"})
    assert all(item.action_id for item in done)
    config, credentials = tenant_config(store, hook)
    assert config.provider == "phone-message-hook"
    assert config.provider_settings["source"] == SPM_CODE
    assert credentials == {"API_KEY": "k-123"}
    [bound] = store.bindings.list(hook, "send-phone-message")
    assert bound.action.deployed_version is not None
    config, _ = tenant_config(store, custom)
    assert (config.provider, config.provider_settings["name"]) == ("custom", "my-cpp")
    [provider] = store.phone_providers.list(custom)
    assert provider["configuration"] == {"delivery_methods": ["text", "voice"]}
    import_tenants(store, path, environ={"HOOK_API_KEY": "k-456"})  # again: updated
    assert tenant_config(store, hook)[1] == {"API_KEY": "k-456"}
    assert store.actions.versions(hook, bound.action.id)[1] == 2


def test_a_missing_script_names_the_setting(tmp_path: Path, store: ServiceStore) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(
        '[tenants.x]\nprovider = "phone-message-hook"\nprovider_settings = { script = "no.py" }\n'
    )
    with pytest.raises(ConfigurationError, match=r"tenants\.x\.provider_settings\.script"):
        import_tenants(store, path, environ={})


# -- phone_limits: into the phone_limits table, as the API stores them

LIMITED = """
[tenants.{tenant}]
provider = "outbox"

[tenants.{tenant}.phone_limits]
recipient = "1/hour"
blocked_countries = ["us"]
country_hourly_caps = {{ gb = 5 }}
"""


def test_phone_limits_are_imported_and_replaced_by_a_new_import(
    tmp_path: Path, store: ServiceStore
) -> None:
    tenant = f"l-{uuid.uuid4().hex[:12]}"
    path = tmp_path / "tenants.toml"
    path.write_text(LIMITED.format(tenant=tenant))
    import_tenants(store, path, environ={})
    # only the fields the file sets are stored (the others follow the defaults), normalised
    assert store.phone_limits.stored(tenant) == {
        "recipient": "1/hour",
        "blocked_countries": ["US"],
        "country_hourly_caps": {"GB": 5},
    }
    shown = store.phone_limits.get(tenant)
    assert (shown["recipient"], shown["blocked_countries"]) == ("1/hour", ["US"])
    assert shown["user_messages"] == "10/hour"
    assert tenant_config(store, tenant)[0].phone_limits.blocked_countries == ["US"]

    store.phone_limits.update(tenant, {"tenant": "100/hour"})  # the API's, then a new import
    path.write_text(f'[tenants.{tenant}]\nphone_limits = {{ ip = "10/minute" }}\n')
    import_tenants(store, path, environ={})
    assert store.phone_limits.stored(tenant) == {"ip": "10/minute"}  # the file's, whole
    assert store.phone_limits.get(tenant)["blocked_countries"] == []

    path.write_text(f"[tenants.{tenant}]\n")  # no phone_limits: the defaults
    import_tenants(store, path, environ={})
    assert store.phone_limits.stored(tenant) == {}
    assert tenant_config(store, tenant)[0].phone_limits == PhoneLimits()


def test_imported_phone_limits_are_the_services(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault test: the file's limits were dropped; the service showed none and sent to a
    blocked country. Imported by the command, read and enforced by a real app."""
    tenant = f"l-{uuid.uuid4().hex[:12]}"
    path = tmp_path / "tenants.toml"
    path.write_text(LIMITED.format(tenant=tenant))
    data_dir = tmp_path / "data"
    for name in ("PHONE_ACTIONS_DATABASE_URL", "PHONE_ACTIONS_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    env = {"PHONE_ACTIONS_DATA_DIR": str(data_dir), "PHONE_ACTIONS_DATABASE_URL": database_url}
    result = CliRunner().invoke(app, ["tenants", "import", str(path)], env=env)
    assert result.exit_code == 0, result.output

    settings = api_settings(data_dir, database_url=database_url)
    keys = SigningKeys.from_settings(settings)

    def auth(*scopes: str) -> dict[str, str]:
        token = keys.issue(tenant=tenant, scopes=list(scopes), ttl=600)
        return {"Authorization": f"Bearer {token}"}

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        shown = client.get(LIMITS, headers=auth("read:attack_protection"))
        assert shown.status_code == 200, shown.text
        limits = shown.json()
        assert (limits["recipient"], limits["blocked_countries"]) == ("1/hour", ["US"])
        assert limits["country_hourly_caps"] == {"GB": 5}
        send = auth("create:phone_messages")
        us = client.post(MESSAGES, json={"to": "+14155552671", "code": "135790"}, headers=send)
        assert us.status_code == 403, us.text
        assert (us.json()["status"], us.json()["reason"]) == ("rejected", "country_blocked")
        uk = {"to": "+447400123456", "code": "246802"}
        assert client.post(MESSAGES, json=uk, headers=send).json()["status"] == "stored"
        again = client.post(MESSAGES, json={**uk, "code": "246803"}, headers=send).json()
        assert (again["reason"], again["limit"]) == ("rate_limited", "recipient")
    sent = OutboxProvider(settings.resolved_database_url, timeout=5).messages(tenant)
    assert [m.recipient for m in sent] == ["+447400123456"]


# -- credentials and settings the tenant's provider refuses: nothing imported

HOOKED = """
[tenants.{hook}]
provider = "phone-message-hook"
provider_settings = {{ script = "send.py" }}
credentials_env = {{ API_KEY = "HOOK_API_KEY" }}
"""


def test_credentials_the_provider_refuses_stop_the_import(tmp_path: Path) -> None:
    """New user: docs/cli.md's `export ACME_TWILIO_ACCOUNT_SID=...` was imported `created`,
    and every delivery failed configuration_error. Now one line naming the tenant, the field
    and its variable, never the value; exit 2; nothing written (a first import's tenants keep
    what they had)."""
    hook = f"h-{uuid.uuid4().hex[:12]}"
    (tmp_path / "send.py").write_text(SPM_CODE)
    path = tmp_path / "tenants.toml"
    path.write_text((ROOT / "docs/examples/tenants.toml").read_text() + HOOKED.format(hook=hook))
    env = {
        "PHONE_ACTIONS_DATA_DIR": str(tmp_path / "data"),
        "ACME_TWILIO_ACCOUNT_SID": SID,
        "ACME_TWILIO_AUTH_TOKEN": TOKEN,
        "HOOK_API_KEY": "k-123",
    }
    runner = CliRunner()
    first = runner.invoke(app, ["tenants", "import", str(path), "--json"], env=env)
    assert first.exit_code == 0, first.output  # valid: twilio, outbox and an action provider
    assert len(json.loads(first.output)) == 3

    bad_sid = "ACnot-a-sid-but-a-secret-7f3"
    refused = runner.invoke(
        app, ["tenants", "import", str(path)], env={**env, "ACME_TWILIO_ACCOUNT_SID": bad_sid}
    )
    assert refused.exit_code == 2
    (line,) = refused.output.splitlines()
    assert line.startswith("error: ")
    assert (
        "tenants.acme.credentials_env.account_sid (environment variable "
        "ACME_TWILIO_ACCOUNT_SID): does not have the allowed form" in line
    )
    assert bad_sid not in line
    assert TOKEN not in line

    engine = create_engine_for(f"sqlite:///{tmp_path / 'data' / 'phone-actions.sqlite3'}")
    store = ServiceStore(engine, Keyring.load(None, tmp_path / "data"))
    try:
        assert tenant_config(store, "acme")[1] == {"account_sid": SID, "auth_token": TOKEN}
    finally:
        engine.dispose()


def test_every_refused_setting_and_credential_is_named_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(
        """
[tenants.ok]
provider = "outbox"

[tenants.acme]
provider = "twilio"
provider_settings = { from_number = "+15017122661", colour = "red" }
credentials_env = { account_sid = "ACME_SID", auth_tokn = "ACME_TOKEN" }
"""
    )
    env = {
        "PHONE_ACTIONS_DATA_DIR": str(tmp_path / "data"),
        "ACME_SID": SID,
        "ACME_TOKEN": TOKEN,
    }
    result = CliRunner().invoke(app, ["tenants", "import", str(path)], env=env)
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.startswith(f"error: {path}: ")
    assert "tenants.acme.provider_settings.colour: not a known setting" in line
    assert "tenants.acme.credentials_env.auth_token: missing" in line
    assert (
        "tenants.acme.credentials_env.auth_tokn (environment variable ACME_TOKEN): not a "
        "credential of provider 'twilio' (its credentials: account_sid, auth_token)" in line
    )
    assert SID not in line
    assert TOKEN not in line
    engine = create_engine_for(f"sqlite:///{tmp_path / 'data' / 'phone-actions.sqlite3'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(select(tenants)).all() == []  # not even the valid tenant
    finally:
        engine.dispose()
