"""The delivery pipeline (DESIGN.md §1): validate, apply policy, render, route, send, fall back.

:meth:`Pipeline.deliver` always returns a :class:`DeliveryReport` (delivered, rejected, failed)
and never raises for a bad tenant, a failing provider or a broken plugin. The fallback rule is
the product's promise: fall back to the default sender only when the primary failed *without*
handing the message off, when the tenant's policy allows it, and when the default sender
carries the channel; so no user ever receives two codes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from runtime import templates
from runtime.errors import (
    ConfigurationError,
    MissingCredentialsError,
    ProviderError,
    UnknownProviderError,
    UnknownTenantError,
)
from runtime.events import Attempt, DeliveryReport, PhoneMessageRequest
from runtime.http import tap_http
from runtime.ids import new_id
from runtime.logs import JsonLinesLogSink, scrub
from runtime.plugins import PhonePluginManager, collect_providers, get_plugin_manager
from runtime.providers import PhoneMessage, Provider, ProviderRegistry, Receipt
from runtime.recording.capture import AttemptCapture, capturing, take_delivery
from runtime.settings import Settings
from runtime.store import IdempotencyStore, create_engine_for
from runtime.store.idempotency import fingerprint
from runtime.templates import spell_code
from runtime.tenants import TenantConfig, TenantDirectory, TomlTenantDirectory

__all__ = ["Pipeline", "request_fingerprint"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_GRACE = 0.5  # seconds a provider gets past its budget before the pipeline abandons it


class Pipeline:
    """Delivers :class:`PhoneMessageRequest` objects. Build one with :meth:`from_settings`."""

    def __init__(
        self,
        *,
        settings: Settings,
        tenants: TenantDirectory,
        plugin_manager: PhonePluginManager,
        providers: ProviderRegistry,
        idempotency: IdempotencyStore | None = None,
    ) -> None:
        self.settings = settings
        self.tenants = tenants
        self.plugin_manager = plugin_manager
        self.providers = providers
        self._idempotency = idempotency
        self._inputs: dict[tuple[str, str], tuple[dict[str, str], Any, Any]] = {}
        self._closers: list[Any] = []
        self._log_sink: JsonLinesLogSink | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        tenants: TenantDirectory | None = None,
        plugins: Iterable[object] = (),
        load_entrypoints: bool = True,
    ) -> Pipeline:
        """Wire a pipeline: plugins, providers, the JSON Lines log sink and the stores."""
        settings = settings or Settings()
        if tenants is None:
            tenants = TomlTenantDirectory.from_file(settings.tenants_file)
        pm = get_plugin_manager(
            settings=settings, plugins=plugins, load_entrypoints=load_entrypoints
        )
        sink = JsonLinesLogSink(settings.resolved_log_file)
        pm.register(sink, name="log-events")
        providers = collect_providers(pm, settings)
        _check_default_sender(providers, settings.default_sender)
        pipeline = cls(settings=settings, tenants=tenants, plugin_manager=pm, providers=providers)
        pipeline._log_sink = sink
        pipeline._closers.append(sink.close)
        return pipeline

    @property
    def idempotency(self) -> IdempotencyStore:
        if self._idempotency is None:
            engine = create_engine_for(self.settings.resolved_database_url)
            self._idempotency = IdempotencyStore(engine)
            self._closers.extend((self._idempotency.close, engine.dispose))
        return self._idempotency

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def flush_logs(self) -> None:
        """Block until every log event of the reports returned so far is written."""
        if self._log_sink is not None:
            self._log_sink.flush()

    async def aclose(self) -> None:
        await self.providers.aclose()
        for close in self._closers:
            close()
        self._closers.clear()

    # -- the path of one message ------------------------------------------------------------

    async def deliver(self, request: PhoneMessageRequest) -> DeliveryReport:
        """Deliver ``request`` once; with an idempotency key, at most once ever."""
        key = request.idempotency_key
        if key is None:
            report = await self._deliver_safely(request)
        else:
            digest = request_fingerprint(request)
            claim = await self._store_call(self.idempotency.claim, request.tenant, key, digest)
            if not claim.won:
                report = await self._earlier_report(request, claim.fingerprint, digest)
                if not report.replayed:  # a rejection is news; a replayed report is not
                    self._notify(request, report)
                return report
            report = await self._deliver_safely(request)
            await self._store_call(
                self.idempotency.complete, request.tenant, key, report.model_dump_json()
            )
        self._notify(request, report)
        take_delivery()  # the recorder took the captures of a recording tenant, if any
        return report

    async def _deliver_safely(self, request: PhoneMessageRequest) -> DeliveryReport:
        """:meth:`_deliver`, with a bug anywhere in it turned into a failed report.

        Nothing is known about what was sent when that happens, so the report says so; the
        idempotency key is still completed, so a retry never sends again.
        """
        try:
            return await self._deliver(request)
        except Exception as exc:
            log.error("delivery failed unexpectedly: %s", type(exc).__name__)
            return _report(
                request,
                "failed",
                [],
                reason="internal_error",
                detail=f"internal error ({type(exc).__name__}); the message may or may not "
                "have been sent",
            )

    async def _store_call(self, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking store call: inline for a local SQLite file, else in a thread."""
        if self.idempotency.local:
            return call(*args)
        return await asyncio.to_thread(call, *args)

    async def _earlier_report(
        self, request: PhoneMessageRequest, held: str, digest: str
    ) -> DeliveryReport:
        key = request.idempotency_key or ""
        if held != digest:
            return _rejected(
                request,
                "idempotency_key_reused",
                f"idempotency key {key!r} was used for a different message",
            )
        deadline = time.monotonic() + self.settings.idempotency_wait
        pause = 0.01
        while True:
            claim = await self._store_call(self.idempotency.get, request.tenant, key)
            if claim is not None and claim.report is not None:
                report = DeliveryReport.model_validate_json(claim.report)
                return report.model_copy(update={"replayed": True})
            if time.monotonic() >= deadline:
                return _rejected(
                    request,
                    "idempotency_in_progress",
                    f"a request with idempotency key {key!r} is still in progress "
                    "(or was interrupted); it is never sent twice",
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)

    async def _deliver(self, request: PhoneMessageRequest) -> DeliveryReport:
        try:
            tenant = self.tenants.get(request.tenant)
        except UnknownTenantError as exc:
            return _rejected(request, "unknown_tenant", str(exc))
        if request.channel not in tenant.message_types:
            enabled = ", ".join(sorted(tenant.message_types)) or "none"
            return _rejected(
                request,
                "message_type_disabled",
                f"message type {request.channel!r} is not enabled for tenant {tenant.id!r} "
                f"(enabled: {enabled})",
            )
        try:
            message = self._render(request, tenant)
        except ConfigurationError as exc:
            return _rejected(request, "template_error", f"tenant {tenant.id!r}: {exc}")
        try:
            hook = self.plugin_manager.hook.before_send
            veto = hook(message=message) if hook.get_hookimpls() else None
        except Exception as exc:
            log.error("a before_send plugin raised %s", type(exc).__name__)
            return _report(
                request,
                "failed",
                [],
                reason="plugin_error",
                detail=f"a before_send plugin raised {type(exc).__name__}; nothing was sent",
            )
        if veto is not None:
            return _rejected(request, "vetoed", str(veto))

        first = await self._attempt(tenant.provider, message, tenant, fallback=False)
        attempts = [first]
        if first.outcome == "delivered":
            return _report(
                request, "delivered", attempts, delivered_by=first.provider, delivery_id=message.id
            )
        reason, detail = self._fallback_refusal(first, tenant, message)
        if reason is not None:
            return _report(
                request, "failed", attempts, reason=reason, detail=detail, delivery_id=message.id
            )
        second = await self._attempt(self.settings.default_sender, message, tenant, fallback=True)
        attempts.append(second)
        if second.outcome == "delivered":
            return _report(
                request, "delivered", attempts, delivered_by=second.provider, delivery_id=message.id
            )
        return _report(
            request,
            "failed",
            attempts,
            reason="fallback_failed",
            detail=f"{first.provider}: {first.error}; then {second.provider}: {second.error}",
            delivery_id=message.id,
        )

    def _fallback_refusal(
        self, failed: Attempt, tenant: TenantConfig, message: PhoneMessage
    ) -> tuple[str | None, str | None]:
        """Why the failed primary attempt must not fall back, or ``(None, None)`` if it may."""
        default = self.settings.default_sender
        failure = f"{failed.provider} failed: [{failed.error_code}] {failed.error}"
        if failed.handed_off:
            return (
                "handed_off",
                f"{failure}; the message may have reached the carrier, so "
                "no fallback (the user must never receive two codes)",
            )
        if tenant.fallback == "never" or failed.provider == default:
            return "provider_failed", failure
        if tenant.fallback == "retryable" and not failed.retryable:
            return (
                "provider_failed",
                f"{failure}; permanent error, and tenant "
                f"{tenant.id!r} falls back only on retryable errors",
            )
        if message.channel not in self.providers.get(default).channels:
            return (
                "fallback_unavailable",
                f"{failure}; the default sender {default!r} does not support {message.channel}",
            )
        return None, None

    def _render(self, request: PhoneMessageRequest, tenant: TenantConfig) -> PhoneMessage:
        text = request.text
        if text is None:  # render only what this channel delivers
            overrides = tenant.voice_templates if request.channel == "voice" else tenant.templates
            text = templates.render(
                overrides.get(request.purpose),
                channel=request.channel,
                purpose=request.purpose,
                code=request.code,
                locale=request.locale,
                tenant_id=tenant.id,
                tenant_name=tenant.display_name,
            )
        return PhoneMessage(
            id=new_id(),
            tenant=tenant.id,
            recipient=request.recipient,
            channel=request.channel,
            purpose=request.purpose,
            locale=request.locale,
            code=request.code,
            text=text,
            timeout=self.settings.attempt_timeout,
            user=request.user,
            client=request.client,
            request=request.request,
        )

    async def _attempt(
        self, name: str, message: PhoneMessage, tenant: TenantConfig, *, fallback: bool
    ) -> Attempt:
        """One try at one provider, turned into an :class:`Attempt` whatever happens."""
        started = time.perf_counter()
        secrets = [message.code]
        try:
            provider = self.providers.get(name)
            if message.channel not in provider.channels:
                raise ProviderError(
                    "channel_not_supported",
                    f"{name} does not support {message.channel}",
                    retryable=False,
                    handed_off=False,
                )
            config, credentials = self._provider_inputs(provider, tenant, secrets)
            if tenant.record:
                send = self._send_recorded(provider, message, tenant, config, credentials)
            else:
                send = provider.send(message, config, credentials)
            if getattr(provider, "enforces_timeout", False):
                receipt = await send  # its HTTP client's total timeout is the budget
            else:
                async with asyncio.timeout(message.timeout + _GRACE):
                    receipt = await send
        except Exception as exc:
            error = _as_provider_error(exc, name, message.timeout, secrets)
            return Attempt(
                provider=name,
                fallback=fallback,
                outcome="failed",
                latency_ms=(time.perf_counter() - started) * 1000,
                error_code=error.code,
                error=scrub(error.message, secrets),
                retryable=error.retryable,
                handed_off=error.handed_off,
            )
        return Attempt(
            provider=name,
            fallback=fallback,
            outcome="delivered",
            latency_ms=(time.perf_counter() - started) * 1000,
            message_id=receipt.message_id,
        )

    async def _send_recorded(
        self,
        provider: Provider,
        message: PhoneMessage,
        tenant: TenantConfig,
        config: BaseModel,
        credentials: BaseModel,
    ) -> Receipt:
        """Send with this attempt captured for the recorder (docs/testing.md)."""
        own = provider.name == tenant.provider
        capture = AttemptCapture(
            provider=provider.name,
            message=message,
            provider_settings=dict(tenant.provider_settings) if own else {},
            credentials=self.tenants.credentials(tenant) if own else {},
            keep=tuple(tenant.record_keep),
            directory=self.settings.resolved_recordings_dir,
        )
        with capturing(capture), tap_http(capture):
            return await provider.send(message, config, credentials)

    def _provider_inputs(
        self, provider: Provider, tenant: TenantConfig, secrets: list[str]
    ) -> tuple[BaseModel, BaseModel]:
        """The provider's validated settings and credentials for this tenant.

        Credentials are read from their source on every attempt (a rotated secret takes
        effect at once) but validated again only when they changed.
        """
        own = provider.name == tenant.provider
        raw_credentials = self.tenants.credentials(tenant) if own else {}
        secrets.extend(raw_credentials.values())
        cache_key = (tenant.id, provider.name)
        cached = self._inputs.get(cache_key)
        if cached is not None and cached[0] == raw_credentials:  # dict equality: same values
            return cached[1], cached[2]
        try:
            config = provider.config_model.model_validate(tenant.provider_settings if own else {})
            credentials = provider.credentials_model.model_validate(raw_credentials)
        except ValidationError as exc:
            fields = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in exc.errors(include_input=False)
            )
            # from None: pydantic's own message would show the input, i.e. the credentials
            raise ConfigurationError(
                f"tenant {tenant.id!r}, provider {provider.name!r}: {fields}"
            ) from None
        self._inputs[cache_key] = (raw_credentials, config, credentials)
        return config, credentials

    def _notify(self, request: PhoneMessageRequest, report: DeliveryReport) -> None:
        """Call each ``after_send`` observer; one failing observer never hides the others."""
        for impl in self.plugin_manager.hook.after_send.get_hookimpls():
            try:
                if impl.argnames == ("request", "report"):
                    impl.function(request, report)
                else:
                    arguments = {"request": request, "report": report}
                    impl.function(*(arguments[a] for a in impl.argnames))
            except Exception as exc:
                _log_scrubbed(f"after_send observer {impl.plugin_name} failed", exc, [request.code])


def request_fingerprint(request: PhoneMessageRequest) -> str:
    """What makes two requests "the same message" for an idempotency key."""
    return fingerprint(
        request.recipient,
        request.channel,
        request.purpose,
        request.locale,
        request.code,
        request.text or "",
    )


def _check_default_sender(providers: ProviderRegistry, name: str) -> None:
    """The default sender must exist and work without settings: it serves every tenant."""
    if name not in providers:
        raise ConfigurationError(f"default sender {name!r} is not a registered provider")
    provider = providers.get(name)
    try:
        provider.config_model.model_validate({})
        provider.credentials_model.model_validate({})
    except ValidationError:
        raise ConfigurationError(
            f"default sender {name!r} needs settings or credentials; the default sender must "
            "work without them (it serves every tenant)"
        ) from None


def _log_scrubbed(what: str, exc: BaseException, secrets: list[str]) -> None:
    """Log ``exc`` with its traceback, with the code and credentials masked out of it."""
    secrets = [*secrets, *(spell_code(s) for s in secrets[:1])]
    text = scrub("".join(traceback.format_exception(exc)), secrets)
    log.error("%s:\n%s", what, text)


def _as_provider_error(
    exc: Exception, provider: str, budget: float, secrets: list[str]
) -> ProviderError:
    """Any failure of an attempt as a :class:`ProviderError`, which drives the fallback rules.

    A configuration problem was found before sending (not handed off). A blown time budget or
    an unexpected exception (a plugin bug) may have happened after the hand-off, so both count
    as handed off: the pipeline then never falls back and never sends a second code.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ConfigurationError):
        code = {
            UnknownProviderError: "unknown_provider",
            MissingCredentialsError: "missing_credentials",
        }.get(type(exc), "configuration_error")
        return ProviderError(code, str(exc), retryable=False, handed_off=False)
    if isinstance(exc, TimeoutError):
        return ProviderError(
            "timeout", f"no answer within the {budget:g} s budget", retryable=True, handed_off=True
        )
    _log_scrubbed(f"provider {provider!r} raised {type(exc).__name__}", exc, secrets)
    return ProviderError(
        "provider_crashed", f"{type(exc).__name__}: {exc}", retryable=False, handed_off=True
    )


def _report(
    request: PhoneMessageRequest,
    status: str,
    attempts: list[Attempt],
    *,
    delivered_by: str | None = None,
    reason: str | None = None,
    detail: str | None = None,
    delivery_id: str | None = None,
) -> DeliveryReport:
    """The report; ``delivery_id`` is the rendered message's id (a provider's client reference
    and the report's id are one), or a new one when nothing was rendered."""
    return DeliveryReport(
        id=delivery_id or new_id(),
        tenant=request.tenant,
        recipient=request.recipient,
        channel=request.channel,
        purpose=request.purpose,
        status=status,
        reason=reason,
        detail=detail,
        delivered_by=delivered_by,
        attempts=attempts,
        idempotency_key=request.idempotency_key,
    )


def _rejected(request: PhoneMessageRequest, reason: str, detail: str) -> DeliveryReport:
    return _report(request, "rejected", [], reason=reason, detail=detail)
