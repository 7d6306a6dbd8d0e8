"""Delivery by the tenant's own action script, run in the sandbox.

Two providers, named as in Auth0: ``phone-message-hook`` runs the tenant's action for the
``send-phone-message`` trigger, ``custom`` runs it for ``custom-phone-provider``. The action is
a provider setting: a script path (tenants file) or its code (``source``, the deployed
version's, when the service's database is the directory); the action's secrets are the
provider credentials (named environment variables in the tenants file, or the action's sealed
secrets in the database), handed only to that tenant's action.

The fallback rule rests on the sandbox's hand-off flag, which the supervisor sets from what
happened on the wire, never from the action: once any HTTP call got a 2xx answer, or a call
failed after its request was written and was answered with neither a 4xx nor a 503 (a 500, a
redirect refused after the answer, a body that cannot be decoded) or not answered at all (a
timeout, a reset, the budget running out mid-call), the message may have reached a provider
and the pipeline never falls back, whatever the action did with the error.
"""

from __future__ import annotations

import errno
import stat
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from runtime import hookimpl, templates
from runtime.errors import ConfigurationError, ProviderError, UnknownTenantError
from runtime.events import (
    Channel,
    CustomPhoneProviderEvent,
    Purpose,
    RequestContext,
    SendPhoneMessageEvent,
)
from runtime.http import HttpObserver
from runtime.locales import language, language_region
from runtime.masking import MASK, escape_controls
from runtime.observing import observed_by
from runtime.provider_kit import ProviderBase, ProviderCredentials, ProviderSettings
from runtime.providers import PhoneMessage, Receipt
from runtime.recording.capture import InvocationObserver, capturing_transport_factory
from runtime.sandbox.host.egress import EgressPolicy
from runtime.sandbox.host.runner import (
    MAX_SECRET_CHARS,
    SECRET_NAME,
    SECRET_NAME_PATTERN,
    SandboxRunner,
)
from runtime.sandbox.shared.contract import InvocationResult, Trigger
from runtime.sandbox.shared.oslayers import isolation_from_settings
from runtime.settings import Settings
from runtime.tenants import TenantConfig, TomlTenantDirectory

__all__ = ["ActionSecrets", "ActionSettings", "CustomActionProvider", "register_providers"]

_MAX_SECRETS = 30

SERVER_IP = "0.0.0.0"
"""``event.request.ip`` when the caller gave none: Auth0 requires the field, and a send this
runtime starts has no browser behind it. The unspecified address parses as an IP and is in
nobody's allow or deny list."""
SERVER_METHOD = "POST"
"""``event.request.method`` when the caller gave none: every Auth0 endpoint that sends a code
(``/mfa/challenge``, ``/mfa/associate``, ``/passwordless/start``, the providers' ``/try``)
is a POST."""
_SERVER_REQUEST = RequestContext(ip=SERVER_IP, method=SERVER_METHOD)


class ActionSettings(ProviderSettings):
    """Where the tenant's action is: a Python file written for the provider's trigger, or its
    code itself (``source``: the deployed version's, from the service's database)."""

    script: Path | None = Field(
        default=None, description="Path of the action script (UTF-8 Python, <= 100 kB)."
    )
    source: str | None = Field(
        default=None, description="The action's code itself (instead of ``script``)."
    )
    name: str | None = Field(default=None, description="Name shown in tracebacks and logs.")
    action_id: str | None = Field(default=None, description="The stored action's id.")
    version_id: str | None = Field(default=None, description="Its deployed version's id.")
    senders: dict[Purpose, Annotated[str, Field(min_length=1, max_length=16)]] = Field(
        default_factory=dict,
        description="The sender by purpose, custom-phone-provider's ``event.notification.from``"
        " (the service's directory sets it from the phone templates' ``content.from``).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ActionSettings:
        if (self.script is None) == (self.source is None):
            raise ValueError(
                "give either script (a file) or source (the code), not both"
                if self.script is not None
                else "no action: give script (a file) or source (the code); with the "
                "service, bind a deployed action to the provider's trigger"
            )
        return self

    @property
    def label(self) -> str:
        """The action's name in tracebacks and logs."""
        if self.name:
            return self.name
        return self.script.stem if self.script is not None else self.action_id or "action"


class ActionSecrets(ProviderCredentials):
    """The action's secrets, ``NAME = value``; names of letters, digits and ``_`` (at most
    128 characters, not starting with a digit), values of at most 4,096 characters, at most
    30."""

    model_config = ConfigDict(extra="allow", frozen=True)  # any name: checked below

    @model_validator(mode="after")
    def _names(self) -> ActionSecrets:
        values = self.model_extra or {}
        if len(values) > _MAX_SECRETS:
            raise ValueError(f"at most {_MAX_SECRETS} secrets, not {len(values)}")
        for name, value in values.items():
            if not SECRET_NAME.fullmatch(name):
                raise ValueError(f"secret name {name!r} must match {SECRET_NAME_PATTERN}")
            if type(value) is not str:
                raise ValueError(f"secret {name} must be a string")
            if len(value) > MAX_SECRET_CHARS:  # refused here, at load: the runner would anyway
                raise ValueError(
                    f"secret {name} has {len(value)} characters; the limit is {MAX_SECRET_CHARS}"
                )
        return self

    def as_dict(self) -> dict[str, str]:
        return dict(self.model_extra or {})


class _Sources:
    """Action scripts by path, re-read when the file changes."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[float, bytes]] = {}

    def read(self, path: Path) -> bytes:
        try:
            found = path.stat()
            if not stat.S_ISREG(found.st_mode):  # a folder (or a device) is not a script
                raise IsADirectoryError(errno.EISDIR, "not a regular file")
            cached = self._cache.get(path)
            if cached is None or cached[0] != found.st_mtime:
                cached = (found.st_mtime, path.read_bytes())
                self._cache[path] = cached
        except OSError as exc:  # the absolute path: a relative one says nothing of where
            raise ProviderError(
                "action_not_found",
                f"action script {str(path.absolute())!r}: {exc.strerror}",
                retryable=False,
                handed_off=False,
            ) from None
        return cached[1]


class _TenantTemplates:
    """The tenants' own templates, to render the channel the pipeline did not (``as_text`` of a
    call, ``as_voice`` of an SMS). Read from the settings' tenants file, again when it changes;
    when it cannot be read, or has no such tenant, the built-in templates are used."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._loaded: tuple[float, TomlTenantDirectory | None] | None = None

    def get(self, tenant_id: str) -> TenantConfig | None:
        if self._path is None:
            return None
        try:
            mtime = self._path.stat().st_mtime
        except OSError:
            return None
        if self._loaded is None or self._loaded[0] != mtime:
            try:
                directory: TomlTenantDirectory | None = TomlTenantDirectory.from_file(self._path)
            except ConfigurationError:
                directory = None
            self._loaded = (mtime, directory)
        directory = self._loaded[1]
        if directory is None:
            return None
        try:
            return directory.get(tenant_id)
        except UnknownTenantError:
            return None


class CustomActionProvider(ProviderBase):
    """Runs the tenant's action for one trigger; both channels."""

    accepts_observer = True  # the egress's exchanges and the invocation go to the observer

    channels: frozenset[Channel] = frozenset({"sms", "voice"})
    config_model: type[BaseModel] = ActionSettings
    credentials_model: type[BaseModel] = ActionSecrets

    def __init__(
        self,
        name: str,
        trigger: Trigger,
        runner: SandboxRunner,
        sources: _Sources,
        tenants: _TenantTemplates | None = None,
    ):
        self.name = name
        self.trigger = trigger
        self._runner = runner
        self._sources = sources
        self._tenants = tenants or _TenantTemplates(None)

    async def send(
        self,
        message: PhoneMessage,
        config: Any,
        credentials: Any,
        *,
        observer: HttpObserver | None = None,
    ) -> Receipt:
        settings = ActionSettings.model_validate(config)
        secrets = ActionSecrets.model_validate(credentials).as_dict()
        if settings.source is not None:
            source = settings.source.encode()
        else:
            assert settings.script is not None  # the model requires one of the two
            source = self._sources.read(settings.script)
        try:
            await self._runner.start()
        except Exception as exc:  # nothing ran: safe to fall back
            raise ProviderError(
                "sandbox_unavailable",
                f"the sandbox cannot start: {exc}",
                retryable=True,
                handed_off=False,
            ) from exc
        tenant = self._tenants.get(message.tenant) if self.trigger != "send-phone-message" else None
        event = trigger_event(message, self.trigger, tenant, senders=settings.senders)
        run = self._runner.run(
            tenant=message.tenant,
            name=settings.label,
            source=source,
            trigger=self.trigger,
            event=event,
            secrets=secrets,
            budget=message.timeout,
        )
        if observer is None:
            result = await run
        else:
            with observed_by(observer):  # the egress's shared transport reads it there
                result = await run
            if isinstance(observer, InvocationObserver):  # a recording
                observer.note_invocation(self.trigger, event, result)
        return _receipt(self.name, result, message.code)

    async def aclose(self) -> None:
        await self._runner.aclose()


def trigger_event(
    message: PhoneMessage,
    trigger: Trigger,
    tenant: TenantConfig | None = None,
    *,
    senders: Mapping[Purpose, str] | None = None,
) -> dict[str, Any]:
    """The Auth0 event object the action receives (secrets are added by the sandbox).

    ``tenant`` (its templates and friendly name) renders the channel the pipeline did not,
    for ``custom-phone-provider``'s ``as_text``/``as_voice``; without it, the built-in ones.
    ``notification.from`` is the purpose's sender in ``senders`` (the provider settings'),
    else in ``tenant``'s; without one it is omitted, as Auth0's optional field.
    """
    request = message.request
    common: dict[str, Any] = {
        "client": message.client,
        "request": _auth0_request(request),
        "tenant": {"id": message.tenant},
        "user": message.user,
        "delivery_id": message.id,
    }
    if request.correlation_id:  # the login transaction's, as the caller gave it
        common["transaction"] = {"correlation_id": request.correlation_id}
    event: SendPhoneMessageEvent | CustomPhoneProviderEvent
    if trigger == "send-phone-message":
        event = SendPhoneMessageEvent.model_validate(
            {
                **common,
                "message_options": {
                    "action": "enrollment"
                    if message.purpose == "enrollment"
                    else "second-factor-authentication",
                    "code": message.code,
                    "message_type": message.channel,
                    "recipient": message.recipient,
                    "text": message.text,
                },
            }
        )
    else:
        other = _render_other_channel(message, tenant)
        voice = message.channel == "voice"
        event = CustomPhoneProviderEvent.model_validate(
            {
                **common,
                "notification": {
                    "message_type": "otp_enroll"
                    if message.purpose == "enrollment"
                    else "otp_verify",
                    "delivery_method": "voice" if voice else "text",
                    "recipient": message.recipient,
                    "from": _sender(message.purpose, tenant, senders),
                    "code": message.code,
                    "locale": auth0_locale(message.locale),
                    "as_text": other if voice else message.text,
                    "as_voice": message.text if voice else other,
                },
            }
        )
    return event.model_dump(mode="json", by_alias=True, exclude_none=True)


def _sender(
    purpose: Purpose, tenant: TenantConfig | None, senders: Mapping[Purpose, str] | None
) -> str | None:
    """The purpose's sender: the provider settings' (the service's phone template), else
    the tenants file's; None when neither has one."""
    found = (senders or {}).get(purpose)
    if found is None and tenant is not None:
        found = tenant.senders.get(purpose)
    return found


def _auth0_request(request: RequestContext) -> RequestContext:
    """``request`` with Auth0's required ``ip`` and ``method`` (:data:`SERVER_IP`,
    :data:`SERVER_METHOD` where the caller gave none)."""
    if request.ip is not None and request.method is not None:
        return request
    if not request.model_fields_set and not request.model_extra:
        return _SERVER_REQUEST  # the usual case: a caller without request context
    return request.model_copy(
        update={"ip": request.ip or SERVER_IP, "method": request.method or SERVER_METHOD}
    )


def _render_other_channel(message: PhoneMessage, tenant: TenantConfig | None) -> str:
    """The text of the channel the pipeline did not render (the SMS text of a call, the voice
    text of an SMS), from the tenant's template or the built-in one; ``message.text`` if the
    tenant's template fails (the pipeline's own text is what gets delivered)."""
    channel: Channel = "sms" if message.channel == "voice" else "voice"
    source = None
    name = message.tenant
    if tenant is not None:
        own = tenant.voice_templates if channel == "voice" else tenant.templates
        source, name = own.get(message.purpose), tenant.display_name
    try:
        return templates.render(
            source,
            channel=channel,
            purpose=message.purpose,
            code=message.code,
            locale=message.locale,
            tenant_id=message.tenant,
            tenant_name=name,
        )
    except ConfigurationError:
        return message.text


@lru_cache(maxsize=256)
def auth0_locale(locale: str) -> str:
    """Auth0's form of ``locale``: ``language_REGION`` (``en`` -> ``en_US``, ``fr-ca`` ->
    ``fr_CA``, ``zh-Hant`` -> ``zh_TW``); the language alone when no region is known."""
    tag = language_region(locale, default="")
    return tag.replace("-", "_") if tag else language(locale, default=locale)


_FAILURES: dict[str, tuple[str, bool]] = {
    # outcome: (error code, retryable)
    "compile_error": ("action_compile_error", False),
    "runtime_error": ("action_error", False),
    "timeout": ("action_timeout", True),
    "memory_limit": ("action_memory_limit", False),
    "output_limit": ("action_output_limit", False),
    "worker_killed": ("action_worker_killed", True),
}


MAX_MESSAGE_ID = 256
"""An action's message id longer than this is cut (ending in "…"): providers' ids are 16 to 64
characters, and an action returning 256 KiB made every report, log line and stored row of
its deliveries 100 times larger."""


def _receipt(provider: str, result: InvocationResult, code: str) -> Receipt:
    """The action's outcome as a receipt, or as the :class:`ProviderError` it amounts to.

    ``code`` is masked out of the message id wherever it appears: the runner's masker leaves
    a code run into other digits alone (``9735194``), and a report never holds the code."""
    handed_off = result.handed_off  # the supervisor's, from the wire (egress/wire.py)
    if result.outcome == "ok" and result.notification is None and not handed_off:
        raise ProviderError(
            "nothing_sent",
            "the action returned without handing the message to anyone: it made no request "
            "that a server may have taken (none was sent, or each was answered 4xx), so "
            "nothing reached a phone",
            retryable=False,
            handed_off=False,
        )
    if result.outcome == "ok" and result.notification is None:
        message_id = None
        if isinstance(result.result, dict):
            found = result.result.get("message_id") or result.result.get("id")
            if isinstance(found, str):
                message_id = escape_controls(found.replace(code, MASK) if code else found)
                if len(message_id) > MAX_MESSAGE_ID:  # it lands in every report and log line
                    message_id = message_id[: MAX_MESSAGE_ID - 1] + "…"
        return Receipt(provider=provider, message_id=message_id, status="action_ok")
    if result.outcome == "ok" and result.notification is not None:
        # the runner masked and escaped these; escaping again is a no-op, kept as the guard
        action = escape_controls(str(result.notification.get("action")))
        reason = escape_controls(result.notification.get("reason", ""))
        raise ProviderError(
            f"notification_{action}",
            f"the action called api.notification.{action}: {reason}",
            retryable=action == "retry",
            handed_off=handed_off,
        )
    if result.outcome == "compile_error":
        detail = "; ".join(
            (f"line {issue.line}: " if issue.line else "") + escape_controls(issue.message)
            for issue in result.compile_errors
        )
        raise ProviderError(
            "action_compile_error",
            detail or "the action does not compile",
            retryable=False,
            handed_off=False,
        )
    code, retryable = _FAILURES[result.outcome]
    raise ProviderError(
        code,
        escape_controls(result.error or result.outcome),
        retryable=retryable,
        handed_off=handed_off,
    )


@hookimpl
def register_providers(register: Any, settings: Settings) -> None:
    runner = SandboxRunner(
        limits=settings.sandbox_limits(),
        policy=EgressPolicy(allow_http_hosts=frozenset(settings.sandbox_allow_http_hosts)),
        max_workers=settings.sandbox_max_workers,
        require_seccomp=settings.sandbox_require_seccomp,
        isolation=isolation_from_settings(settings),
        transport_factory=capturing_transport_factory(),  # egress's own, seen by recordings
    )
    sources = _Sources()
    tenants = _TenantTemplates(settings.tenants_file)
    register(CustomActionProvider("phone-message-hook", "send-phone-message", runner, sources))
    register(CustomActionProvider("custom", "custom-phone-provider", runner, sources, tenants))
