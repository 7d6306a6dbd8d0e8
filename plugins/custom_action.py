"""Delivery by the tenant's own action script, run in the sandbox.

Two providers, named as in Auth0: ``phone-message-hook`` runs the tenant's action for the
``send-phone-message`` trigger, ``custom`` runs it for ``custom-phone-provider``. The script
path is a provider setting; the action's secrets are the provider credentials (named
environment variables in the tenants file), handed only to that tenant's action.

The fallback rule rests on the sandbox's hand-off flag: once the action got a 2xx answer from
any HTTP call, or a call failed or was stopped after its request may have reached the server
(a read timeout, a broken connection, the budget running out mid-call), the message may have
reached a provider and the pipeline never falls back.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from runtime import hookimpl
from runtime.errors import ProviderError
from runtime.events import Channel, CustomPhoneProviderEvent, SendPhoneMessageEvent
from runtime.masking import escape_controls
from runtime.providers import PhoneMessage, Receipt
from runtime.recording.capture import capturing_transport_factory, note_invocation
from runtime.sandbox.egress import EgressPolicy
from runtime.sandbox.runner import SandboxRunner
from runtime.sandbox.types import InvocationResult, Trigger
from runtime.settings import Settings

__all__ = ["ActionSecrets", "ActionSettings", "CustomActionProvider", "register_providers"]

_SECRET_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_MAX_SECRETS = 30


class ActionSettings(BaseModel):
    """Where the tenant's action is: a Python file written for the provider's trigger."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    script: Path = Field(description="Path of the action script (UTF-8 Python, <= 100 kB).")
    name: str | None = Field(default=None, description="Name shown in tracebacks and logs.")


class ActionSecrets(BaseModel):
    """The action's secrets, ``NAME = value``; names in ALL_CAPS_SNAKE_CASE, at most 30."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="after")
    def _names(self) -> ActionSecrets:
        values = self.model_extra or {}
        if len(values) > _MAX_SECRETS:
            raise ValueError(f"at most {_MAX_SECRETS} secrets, not {len(values)}")
        for name, value in values.items():
            if not _SECRET_NAME.match(name):
                raise ValueError(f"secret name {name!r} must match {_SECRET_NAME.pattern}")
            if type(value) is not str:
                raise ValueError(f"secret {name} must be a string")
        return self

    def as_dict(self) -> dict[str, str]:
        return dict(self.model_extra or {})


class _Sources:
    """Action scripts by path, re-read when the file changes."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[float, bytes]] = {}

    def read(self, path: Path) -> bytes:
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            raise ProviderError(
                "action_not_found",
                f"action script {str(path)!r}: {exc.strerror}",
                retryable=False,
                handed_off=False,
            ) from None
        cached = self._cache.get(path)
        if cached is None or cached[0] != mtime:
            cached = (mtime, path.read_bytes())
            self._cache[path] = cached
        return cached[1]


class CustomActionProvider:
    """Runs the tenant's action for one trigger; both channels."""

    channels: frozenset[Channel] = frozenset({"sms", "voice"})
    config_model: type[BaseModel] = ActionSettings
    credentials_model: type[BaseModel] = ActionSecrets

    def __init__(self, name: str, trigger: Trigger, runner: SandboxRunner, sources: _Sources):
        self.name = name
        self.trigger = trigger
        self._runner = runner
        self._sources = sources

    async def send(self, message: PhoneMessage, config: Any, credentials: Any) -> Receipt:
        settings = ActionSettings.model_validate(config)
        secrets = ActionSecrets.model_validate(credentials).as_dict()
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
        event = trigger_event(message, self.trigger)
        result = await self._runner.run(
            tenant=message.tenant,
            name=settings.name or settings.script.stem,
            source=source,
            trigger=self.trigger,
            event=event,
            secrets=secrets,
            budget=message.timeout,
        )
        note_invocation(self.trigger, event, result)  # for the recorder; no-op otherwise
        return _receipt(self.name, result)

    async def aclose(self) -> None:
        await self._runner.aclose()


def trigger_event(message: PhoneMessage, trigger: Trigger) -> dict[str, Any]:
    """The Auth0 event object the action receives (secrets are added by the sandbox)."""
    common: dict[str, Any] = {
        "client": message.client,
        "request": message.request,
        "tenant": {"id": message.tenant},
        "transaction": {"correlation_id": message.id},
        "user": message.user,
    }
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
        event = CustomPhoneProviderEvent.model_validate(
            {
                **common,
                "notification": {
                    "message_type": "otp_enroll"
                    if message.purpose == "enrollment"
                    else "otp_verify",
                    "delivery_method": "text" if message.channel == "sms" else "voice",
                    "recipient": message.recipient,
                    "code": message.code,
                    "locale": message.locale,
                    "as_text": message.text,
                    "as_voice": message.text,
                },
            }
        )
    return event.model_dump(mode="json", by_alias=True, exclude_none=True)


_FAILURES: dict[str, tuple[str, bool]] = {
    # outcome: (error code, retryable)
    "compile_error": ("action_compile_error", False),
    "runtime_error": ("action_error", False),
    "timeout": ("action_timeout", True),
    "memory_limit": ("action_memory_limit", False),
    "output_limit": ("action_output_limit", False),
}


def _receipt(provider: str, result: InvocationResult) -> Receipt:
    """The action's outcome as a receipt, or as the :class:`ProviderError` it amounts to."""
    handed_off = result.handed_off  # the supervisor's: 2xx answers and requests in flight
    if result.outcome == "ok" and result.notification is None:
        message_id = None
        if isinstance(result.result, dict):
            found = result.result.get("message_id") or result.result.get("id")
            message_id = escape_controls(found) if isinstance(found, str) else None
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
        transport_factory=capturing_transport_factory(),  # egress's own, seen by recordings
    )
    sources = _Sources()
    register(CustomActionProvider("phone-message-hook", "send-phone-message", runner, sources))
    register(CustomActionProvider("custom", "custom-phone-provider", runner, sources))
