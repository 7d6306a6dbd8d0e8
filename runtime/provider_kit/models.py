"""The base models of a provider's settings and credentials, and how a send validates them.

Every provider's models forbid unknown fields (a misspelt setting is an error, not ignored) and
are frozen (validated once, shared by concurrent sends). Credentials are write-only: they are
never shown, and every value in them is redacted from error messages (:func:`secret_values`).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from runtime.provider_kit.errors import configuration_error
from runtime.wording import problems

__all__ = ["ProviderCredentials", "ProviderSettings", "secret_values", "validated"]


class ProviderSettings(BaseModel):
    """A tenant's public settings of one provider (``provider_settings`` in tenants.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderCredentials(BaseModel):
    """A tenant's secrets for one provider (from ``credentials_env``; write-only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_Model = TypeVar("_Model", bound=BaseModel)


def validated(model: type[_Model], value: Any, *, label: str, what: str) -> _Model:
    """``value`` as ``model`` (``what``: "config" or "credentials"), or ``configuration_error``
    naming the fields only: pydantic's own message would echo the values, i.e. secrets."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        fields = problems(exc.errors(include_input=False, include_url=False))
        raise configuration_error(f"invalid {label} {what}: {fields}") from None


def secret_values(model: BaseModel) -> tuple[str, ...]:
    """Every credential value in ``model`` (secret or not) of 4 characters or more, for
    redaction (shorter values would mask ordinary words)."""
    values: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and len(value) >= 4:
            values.append(value)
    return tuple(values)
