"""Tenant configuration: errors name the file, the tenant and the field; secrets stay in env."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime import ConfigurationError, MissingCredentialsError, UnknownTenantError
from runtime.tenants import TomlTenantDirectory


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> TomlTenantDirectory:
    path = tmp_path / "tenants.toml"
    path.write_text(text)
    return TomlTenantDirectory.from_file(path, environ=environ or {})


def test_defaults_and_ids(tmp_path: Path) -> None:
    directory = load(tmp_path, "[tenants.b]\n[tenants.a]\nprovider = 'twilio'\n")
    assert directory.ids() == ["a", "b"]
    b = directory.get("b")
    assert (b.provider, b.message_types, b.fallback) == ("outbox", frozenset({"sms"}), "retryable")
    with pytest.raises(UnknownTenantError, match="'c'"):
        directory.get("c")


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ("message_types = ['fax']", "tenants.acme.message_types"),
        ("fallback = 'sometimes'", "tenants.acme.fallback"),
        ("provider_setting = {}", "tenants.acme.provider_setting"),
        ("credentials_env = { auth_token = 'not a var' }", "tenants.acme.credentials_env"),
        ("templates = { signup = 'x' }", "tenants.acme.templates.signup"),
    ],
)
def test_invalid_field_is_named(tmp_path: Path, table: str, named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load(tmp_path, f"[tenants.acme]\n{table}\n")
    assert named in str(info.value)
    assert "tenants.toml" in str(info.value)


def test_an_id_key_cannot_rename_a_tenant(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"tenants\.acme\.id: not a setting"):
        load(tmp_path, "[tenants.acme]\nid = 'globex'\n")


def test_invalid_tenant_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"tenants\.-bad\.id"):
        load(tmp_path, "[tenants.-bad]\n")


def test_credentials_resolve_from_the_named_variables_only(tmp_path: Path) -> None:
    text = "[tenants.acme]\ncredentials_env = { account_sid = 'SID_VAR', auth_token = 'TOK' }\n"
    directory = load(tmp_path, text, {"SID_VAR": "AC1", "TOK": "t0k"})
    acme = directory.get("acme")
    assert directory.credentials(acme) == {"account_sid": "AC1", "auth_token": "t0k"}

    partial = load(tmp_path, text, {"SID_VAR": "AC1"})
    with pytest.raises(MissingCredentialsError, match=r"auth_token \(environment variable TOK\)"):
        partial.credentials(partial.get("acme"))
