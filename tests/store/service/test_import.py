"""``phone-actions tenants import``: a tenants file of the TOML format into the database."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from runtime.cli import app
from runtime.errors import ConfigurationError
from runtime.store import create_engine_for
from runtime.store.crypto import Keyring
from runtime.store.schema import guardian_phone, tenants
from runtime.store.service import ServiceStore
from runtime.store.service.importer import import_tenants
from runtime.store.tenant_config import tenant_config
from tests.store.service.conftest import SPM_CODE

ROOT = Path(__file__).resolve().parents[3]
SID = "AC" + "b" * 32
TOKEN = "acme-token-never-plain-91c"


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
