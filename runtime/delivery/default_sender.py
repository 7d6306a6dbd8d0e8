"""The default sender: operator configuration, not a tenant's.

Any registered provider can be the default sender, with the platform's own settings and
credentials (``PHONE_ACTIONS_DEFAULT_SENDER``, ``..._SETTINGS``, ``..._CREDENTIALS_ENV``). It
serves tenants that chose no provider (``provider = "default"``) and the fallback of those whose
provider failed without handing the message off. Like Auth0's, it has a lifetime cap of
messages per tenant (``PHONE_ACTIONS_DEFAULT_SENDER_CAP``), which the pipeline enforces for
whichever provider it is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from runtime.errors import ConfigurationError
from runtime.providers import Provider, ProviderRegistry, reaches_phones
from runtime.settings import Settings

__all__ = ["DEFAULT", "DefaultSender"]

DEFAULT = "default"
"""The provider name a tenant gives to use the platform's default sender."""


@dataclass(frozen=True)
class DefaultSender:
    """The resolved default sender: its provider, validated inputs, and the per-tenant cap."""

    provider: Provider
    config: BaseModel
    credentials: BaseModel
    cap: int
    secrets: list[str] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def reaches_phones(self) -> bool:
        return reaches_phones(self.provider)

    @classmethod
    def from_settings(
        cls,
        providers: ProviderRegistry,
        settings: Settings,
        environ: Mapping[str, str] | None = None,
    ) -> DefaultSender:
        """Resolve and validate the default sender at start; a problem names the setting."""
        environ = os.environ if environ is None else environ
        name = settings.default_sender
        if name == DEFAULT or name not in providers:
            raise ConfigurationError(
                f"PHONE_ACTIONS_DEFAULT_SENDER: {name!r} is not a registered provider"
                f"{providers.closest(name)}; registered: "
                f"{', '.join(sorted(p.name for p in providers)) or 'none'}"
            )
        provider = providers.get(name)
        raw_credentials, missing = {}, []
        for credential, variable in settings.default_sender_credentials_env.items():
            value = environ.get(variable)
            if value:
                raw_credentials[credential] = value
            else:
                missing.append(f"{credential} (environment variable {variable})")
        if missing:
            raise ConfigurationError(
                "PHONE_ACTIONS_DEFAULT_SENDER_CREDENTIALS_ENV: credentials of the default "
                f"sender {name!r} not set: {', '.join(missing)}"
            )
        try:
            config = provider.config_model.model_validate(settings.default_sender_settings)
        except ValidationError as exc:
            raise ConfigurationError(
                f"PHONE_ACTIONS_DEFAULT_SENDER_SETTINGS: {_fields(exc, 'setting')} "
                f"(provider {name!r})"
            ) from None
        try:
            credentials = provider.credentials_model.model_validate(raw_credentials)
        except ValidationError as exc:
            raise ConfigurationError(
                f"PHONE_ACTIONS_DEFAULT_SENDER_CREDENTIALS_ENV: {_fields(exc, 'credential')} "
                f"(provider {name!r})"
            ) from None
        return cls(
            provider=provider,
            config=config,
            credentials=credentials,
            cap=settings.default_sender_cap,
            secrets=list(raw_credentials.values()),
        )


def _fields(exc: ValidationError, kind: str) -> str:
    """Which fields failed, without the input values (they may be credentials); an error
    about the whole model is said without a location, an unknown field as an unknown ``kind``
    (``setting`` or ``credential``)."""
    from runtime.wording import problems

    return problems(
        {**e, "msg": f"not a known {kind} (check the spelling)"}
        if e["type"] == "extra_forbidden"
        else e
        for e in exc.errors(include_input=False, include_url=False)
    )
