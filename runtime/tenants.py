"""Tenant configuration behind one small interface, :class:`TenantDirectory`.

For now tenants live in a TOML file (``PHONE_ACTIONS_TENANTS_FILE``); credentials are never in
that file, only the names of the environment variables that hold them. A later store (database
behind the Management API) implements the same two methods.
"""

from __future__ import annotations

import difflib
import os
import stat
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from runtime import templates
from runtime.env_file import credentials_environ
from runtime.errors import (
    ConfigurationError,
    MissingCredentialsError,
    UnknownProviderError,
    UnknownTenantError,
)
from runtime.events import Channel, Purpose
from runtime.phone_numbers import region_code
from runtime.policy import PhoneLimits

__all__ = [
    "ACTION_PROVIDERS",
    "DEFAULT_PROVIDER",
    "FallbackPolicy",
    "TenantConfig",
    "TenantDirectory",
    "TomlTenantDirectory",
    "check_providers",
    "read_tenants_file",
]

FallbackPolicy = Literal["never", "retryable", "always"]
TENANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DEFAULT_PROVIDER = "default"
"""The ``provider`` of a tenant served by the platform's default sender (registered by no
plugin: ``PHONE_ACTIONS_DEFAULT_SENDER`` names the provider behind it)."""
ACTION_PROVIDERS = frozenset({"phone-message-hook", "custom"})
"""The providers that run the tenant's action script (``provider_settings.script``): in a
tenants file, a relative ``script`` is relative to that file's folder."""


class TenantConfig(BaseModel):
    """One tenant's delivery policy.

    ``fallback`` says when a failed provider falls back to the default sender: ``never``;
    ``retryable`` (default) only for errors the provider calls retryable; ``always`` for any
    error. Whatever it says, a message that may have been handed off never falls back.

    ``senders`` is the sender by purpose (in the service, the enabled phone template's
    ``content.from``): a custom-phone-provider action reads it as ``event.notification.from``.

    ``record`` turns on recording of this tenant's attempts (docs/testing.md);
    ``record_keep`` names secrets or credentials kept unredacted in recordings (a base URL,
    a routing table: values that are not secret and that a replay needs as they were).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=TENANT_ID_PATTERN)
    friendly_name: str | None = None
    message_types: frozenset[Channel] = frozenset({"sms"})
    provider: str = DEFAULT_PROVIDER
    provider_settings: dict[str, Any] = Field(default_factory=dict)
    credentials_env: dict[str, str] = Field(default_factory=dict)
    fallback: FallbackPolicy = "retryable"
    templates: dict[Purpose, str] = Field(default_factory=dict)
    voice_templates: dict[Purpose, str] = Field(default_factory=dict)
    senders: dict[Purpose, Annotated[str, Field(min_length=1, max_length=16)]] = Field(
        default_factory=dict
    )  # 1 to 16 characters, as Auth0's phone template content.from
    record: bool = False
    record_keep: list[str] = Field(default_factory=list)
    default_country: str | None = None
    phone_limits: PhoneLimits = Field(default_factory=PhoneLimits)  # docs/abuse_protection.md

    @field_validator("credentials_env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for field, var in value.items():
            if not var or not var.replace("_", "").isalnum():
                raise ValueError(f"{field}: {var!r} is not an environment variable name")
        return value

    @field_validator("default_country", mode="before")
    @classmethod
    def _region(cls, value: object) -> object:
        return None if value is None else region_code(value)

    @field_validator("templates", "voice_templates")
    @classmethod
    def _templates_compile(
        cls, value: dict[Purpose, str], info: ValidationInfo
    ) -> dict[Purpose, str]:
        """Each template compiles, prints the code and stays within the limits of
        :mod:`runtime.templates` in a trial render, or the file is refused naming it."""
        channel: Channel = "voice" if info.field_name == "voice_templates" else "sms"
        line_errors = []
        for purpose, source in value.items():
            problem = templates.check(source, channel, purpose)
            if problem:
                line_errors.append(
                    InitErrorDetails(
                        type=PydanticCustomError("template", "{problem}", {"problem": problem}),
                        loc=(purpose,),
                        input=None,
                    )
                )
        if line_errors:
            raise ValidationError.from_exception_data("templates", line_errors)
        return value

    @property
    def display_name(self) -> str:
        return self.friendly_name or self.id


class TenantDirectory(Protocol):
    """Where the pipeline finds tenants and their credentials."""

    def get(self, tenant_id: str) -> TenantConfig:
        """The tenant's configuration; raise :class:`UnknownTenantError` when absent."""
        ...

    def credentials(self, tenant: TenantConfig) -> dict[str, str]:
        """The tenant's provider credentials, resolved; raise :class:`MissingCredentialsError`."""
        ...

    def ids(self) -> list[str]:
        """Every configured tenant id, sorted."""
        ...


def read_tenants_file(path: Path, *, given_as: str | None = None) -> bytes:
    """``path``'s bytes. When it cannot be read, one :class:`ConfigurationError` naming where
    the path came from: the setting PHONE_ACTIONS_TENANTS_FILE, or ``given_as`` when it came
    from elsewhere (a command's argument: ``FILE``)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        if given_as:
            message = f"{given_as} {str(path)!r}: not found"
        else:
            message = f"tenants file {str(path)!r} not found (set PHONE_ACTIONS_TENANTS_FILE)"
        raise ConfigurationError(message) from None
    except OSError as exc:  # a folder, no permission: one line, not a traceback
        reason = exc.strerror or exc
        if given_as:
            message = f"{given_as} {str(path)!r}: cannot read: {reason}"
        else:
            message = f"PHONE_ACTIONS_TENANTS_FILE: cannot read {str(path)!r}: {reason}"
        raise ConfigurationError(message) from None


class TomlTenantDirectory:
    """Tenants from a TOML file with one ``[tenants.ID]`` table each; see docs/configuration.md."""

    def __init__(
        self,
        tenants: Mapping[str, TenantConfig],
        *,
        source: str = "<memory>",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._tenants = dict(tenants)
        self._source = source
        # credentials: the process environment, then the .env file settings read
        self._environ = credentials_environ() if environ is None else environ

    @classmethod
    def from_file(
        cls, path: Path, *, environ: Mapping[str, str] | None = None
    ) -> TomlTenantDirectory:
        """Load and validate ``path`` (PHONE_ACTIONS_TENANTS_FILE's); errors name the file, the
        line or the tenant and field."""
        raw = read_tenants_file(path)
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{path}: {exc}") from exc
        return cls.from_mapping(data, source=str(path), environ=environ, base=path.parent)

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        *,
        source: str = "<memory>",
        environ: Mapping[str, str] | None = None,
        base: Path | None = None,
    ) -> TomlTenantDirectory:
        """``base``: the tenants file's folder, against which a relative action ``script`` is
        made absolute (whatever the process's current directory is, then or later)."""
        unknown = sorted(set(data) - {"tenants"})
        if unknown:  # a typo ([tenant.acme]) would otherwise leave a tenant out, silently
            raise ConfigurationError(
                f"{source}: {unknown[0]}: not a key of a tenants file (it holds one "
                "[tenants.<id>] table per tenant)"
            )
        tables = data.get("tenants", {})
        if not isinstance(tables, dict):
            raise ConfigurationError(f"{source}: 'tenants' must be a table of tenant tables")
        tenants = {}
        for tenant_id, table in tables.items():
            if not isinstance(table, dict):
                raise ConfigurationError(f"{source}: tenants.{tenant_id} must be a table")
            if "id" in table:
                raise ConfigurationError(
                    f"{source}: tenants.{tenant_id}.id: not a setting (the table name is the id)"
                )
            if base is not None:
                table = _script_from(base, table)
            try:
                tenants[tenant_id] = TenantConfig.model_validate({"id": tenant_id, **table})
            except ValidationError as exc:
                details = "; ".join(
                    f"tenants.{tenant_id}.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                    for e in exc.errors()
                )
                raise ConfigurationError(f"{source}: {details}") from exc
        return cls(tenants, source=source, environ=environ)

    def get(self, tenant_id: str) -> TenantConfig:
        try:
            return self._tenants[tenant_id]
        except KeyError:
            close = difflib.get_close_matches(tenant_id, self._tenants, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownTenantError(f"no tenant {tenant_id!r} in {self._source}{hint}") from None

    def credentials(self, tenant: TenantConfig) -> dict[str, str]:
        resolved, missing = {}, []
        for field, var in tenant.credentials_env.items():
            value = self._environ.get(var)
            if value:
                resolved[field] = value
            else:
                missing.append(f"{field} (environment variable {var})")
        if missing:
            raise MissingCredentialsError(
                f"tenant {tenant.id!r}: credentials not set: {', '.join(missing)}"
            )
        return resolved

    def ids(self) -> list[str]:
        return sorted(self._tenants)

    @property
    def source(self) -> str:
        """Where the tenants came from: the file's path, or ``<memory>``."""
        return self._source


def _script_from(base: Path, table: dict[str, Any]) -> dict[str, Any]:
    """``table`` with its action ``script`` made absolute against ``base`` when relative."""
    settings = table.get("provider_settings")
    if table.get("provider") not in ACTION_PROVIDERS or not isinstance(settings, dict):
        return table
    script = settings.get("script")
    if not isinstance(script, str) or not script or Path(script).is_absolute():
        return table
    resolved = str((base / script).absolute())
    return {**table, "provider_settings": {**settings, "script": resolved}}


def script_problem(script: str | os.PathLike[str]) -> str | None:
    """Why the action script at ``script`` cannot be read (naming its absolute path), or None:
    the reason a send of its tenant would fail ``action_not_found``."""
    path = Path(script).absolute()
    try:
        found = path.stat()
        if not stat.S_ISREG(found.st_mode):
            return f"{str(path)!r}: not a regular file"
        if not os.access(path, os.R_OK):
            return f"{str(path)!r}: Permission denied"
    except OSError as exc:
        return f"{str(path)!r}: {exc.strerror}"
    return None


def check_providers(
    directory: TomlTenantDirectory, registered: Collection[str], *, only: str | None = None
) -> None:
    """Raise one :class:`UnknownProviderError` naming each tenant whose ``provider`` is neither
    ``default`` nor in ``registered`` (the providers the plugins actually loaded registered,
    third-party ones included), with the closest name and the list of registered ones.
    ``only``: that tenant alone (a send for it need not wait for the others' fixes).

    Checking the whole file (no ``only``: ``doctor``, ``tenants import``) also checks that each
    action provider's ``script`` is a readable file, or raises one :class:`ConfigurationError`
    naming each tenant, the field and the absolute path (a send of that tenant would fail
    ``action_not_found``).

    Reading the file does not check the names (it needs no plugins); without this a misspelt
    provider would only fail at the first delivery."""
    known = sorted(set(registered))
    problems = []
    for tenant_id in directory.ids():
        if only is not None and tenant_id != only:
            continue
        name = directory.get(tenant_id).provider
        if name == DEFAULT_PROVIDER or name in registered:
            continue
        close = difflib.get_close_matches(name, [*known, DEFAULT_PROVIDER], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(
            f"tenants.{tenant_id}.provider: {name!r} is not a registered provider{hint}"
        )
    if problems:
        raise UnknownProviderError(
            f"{directory.source}: {'; '.join(problems)}; registered: {', '.join(known) or 'none'}, "
            f"or {DEFAULT_PROVIDER!r} (the default sender)"
        )
    if only is None:
        _check_scripts(directory)


def _check_scripts(directory: TomlTenantDirectory) -> None:
    problems = []
    for tenant_id in directory.ids():
        tenant = directory.get(tenant_id)
        script = tenant.provider_settings.get("script")
        if tenant.provider not in ACTION_PROVIDERS or not isinstance(script, str) or not script:
            continue  # no script (or a ``source``): the provider's own settings check says so
        problem = script_problem(script)
        if problem:
            problems.append(f"tenants.{tenant_id}.provider_settings.script: {problem}")
    if problems:
        raise ConfigurationError(f"{directory.source}: {'; '.join(problems)}")
