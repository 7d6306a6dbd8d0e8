"""Tenant configuration: errors name the file, the tenant and the field; secrets stay in env."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime import ConfigurationError, MissingCredentialsError, UnknownTenantError, templates
from runtime.tenants import TomlTenantDirectory


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> TomlTenantDirectory:
    path = tmp_path / "tenants.toml"
    path.write_text(text)
    return TomlTenantDirectory.from_file(path, environ=environ or {})


def test_defaults_and_ids(tmp_path: Path) -> None:
    directory = load(tmp_path, "[tenants.b]\n[tenants.a]\nprovider = 'twilio'\n")
    assert directory.ids() == ["a", "b"]
    b = directory.get("b")
    assert (b.provider, b.message_types, b.fallback) == ("default", frozenset({"sms"}), "retryable")
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


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[tenant.acme]\nprovider = 'outbox'\n", "tenant"),  # a typo: acme would be missing
        ("[tenants.acme]\n[other]\nx = 1\n", "other"),
        ("fallback = 'never'\n[tenants.acme]\n", "fallback"),  # a tenant field, not in a table
    ],
)
def test_a_top_level_key_other_than_tenants_is_refused_naming_it(
    tmp_path: Path, text: str, key: str
) -> None:
    """docs/configuration.md: an unknown key stops the start, the file and the key named."""
    with pytest.raises(ConfigurationError) as info:
        load(tmp_path, text)
    said = str(info.value)
    assert said == (
        f"{tmp_path / 'tenants.toml'}: {key}: not a key of a tenants file (it holds one "
        "[tenants.<id>] table per tenant)"
    )


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


def test_default_country_is_validated_and_upper_cased(tmp_path: Path) -> None:
    directory = load(tmp_path, "[tenants.a]\ndefault_country = 'us'\n[tenants.b]\n")
    assert directory.get("a").default_country == "US"
    assert directory.get("b").default_country is None
    for bad in ("'XX'", "'USA'", "1"):
        with pytest.raises(ConfigurationError, match=r"tenants\.a\.default_country: "):
            load(tmp_path, f"[tenants.a]\ndefault_country = {bad}\n")


def test_a_template_over_the_limits_is_refused_at_load_naming_it(tmp_path: Path) -> None:
    huge = "{{ code }}" + "x" * (5 * 1024 * 1024)
    with pytest.raises(ConfigurationError) as info:
        load(tmp_path, f"[tenants.acme.templates]\nverification = '{huge}'\n")
    message = str(info.value)
    assert f"tenants.acme.templates.verification: the template is {len(huge)} characters" in (
        message
    )
    assert f"over the limit of {templates.MAX_SOURCE_LENGTH}" in message
    assert len(message) < 300  # the template itself is never echoed

    loops = "{% for a in (1..1000) %}{% for b in (1..1000) %}{{ code }}{% endfor %}{% endfor %}"
    with pytest.raises(ConfigurationError, match=r"tenants\.acme\.voice_templates\.enrollment: "):
        load(tmp_path, f"[tenants.acme.voice_templates]\nenrollment = '{loops}'\n")


def test_tenants_file_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PHONE_ACTIONS_TENANTS_FILE: cannot read"):
        TomlTenantDirectory.from_file(tmp_path)
