"""The ``around_attempt`` hook: plugins that wrap every provider attempt (docs/hooks.md).

A pluggy call is synchronous, and an attempt is awaited; so the pipeline drives the wrappers
itself, as pluggy drives ``wrapper=True`` implementations, but across the ``await``: each
wrapper runs up to its ``yield`` before the provider's ``send`` starts, and from it once the
send ended, with the :class:`~runtime.providers.Receipt` sent into it or the error thrown in.

Wrappers observe; they never decide what happened to a code. One that raises is logged and
left out (before the send) or ignored (after it), and what a wrapper returns or swallows does
not change the attempt's outcome.

What a wrapper sees is an :class:`AttemptContext`; what lasts across the attempts of one
delivery (a fallback is a second attempt) is its :class:`DeliveryContext`, whose
:meth:`~DeliveryContext.on_report` callbacks run with the final report before its log event
is written.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from runtime.masking import Masker

if TYPE_CHECKING:
    from pluggy import HookImpl

    from runtime.events import DeliveryReport
    from runtime.http import HttpObserver
    from runtime.providers import PhoneMessage, Provider, Receipt
    from runtime.settings import Settings
    from runtime.tenants import TenantConfig

__all__ = [
    "AttemptContext",
    "AttemptWrapper",
    "DeliveryContext",
    "DeliveryHolder",
    "applicable",
    "only_for",
    "run_wrapped",
]

log = logging.getLogger("runtime.delivery")
F = TypeVar("F", bound=Callable[..., Any])

AttemptWrapper = Generator[None, "Receipt", "Receipt | None"]
"""What an ``around_attempt`` implementation is: a generator that yields once."""


@dataclass(slots=True)
class DeliveryContext:
    """One delivery, across its attempts: per-plugin state, and what to do with its report."""

    data: dict[str, Any] = field(default_factory=dict)
    """Per-delivery state of plugins, under a key of their own (their module name)."""
    _on_report: list[Callable[[DeliveryReport], None]] = field(default_factory=list)

    def on_report(self, callback: Callable[[DeliveryReport], None]) -> None:
        """Call ``callback(report)`` with the delivery's final report, once."""
        self._on_report.append(callback)

    def finish(self, report: DeliveryReport, code: str) -> None:
        """Run the callbacks (the pipeline calls this); one that raises is logged, and does
        not stop the others. ``code`` is masked out of what is logged."""
        callbacks, self._on_report = self._on_report, []
        for callback in callbacks:
            try:
                callback(report)
            except Exception as exc:
                log.error("an on_report callback failed: %s", Masker((), code).line(str(exc)))


class AttemptContext:
    """One provider attempt, as ``around_attempt`` wrappers see it.

    ``observer`` is ``None`` until a wrapper sets it; the pipeline then passes it to
    ``provider.send(..., observer=...)`` when the provider declares ``accepts_observer``.
    ``provider_settings`` and :meth:`credentials` are the tenant's raw inputs of its own
    provider; both are empty for the default sender (the platform's, not the tenant's).
    A plain class with slots, built once per attempt: its delivery context is made only when
    a wrapper asks for it.
    """

    __slots__ = (
        "_credentials",
        "_holder",
        "fallback",
        "is_default",
        "message",
        "observer",
        "provider",
        "settings",
        "tenant",
    )

    def __init__(
        self,
        provider: Provider[Any, Any],
        message: PhoneMessage,
        tenant: TenantConfig,
        *,
        fallback: bool,
        is_default: bool,
        settings: Settings,
        holder: DeliveryHolder,
        credentials: Callable[[TenantConfig], dict[str, str]],
    ) -> None:
        self.provider = provider
        self.message = message
        self.tenant = tenant
        self.fallback = fallback
        self.is_default = is_default
        self.settings = settings
        self.observer: HttpObserver | None = None
        self._holder = holder
        self._credentials = credentials

    @property
    def delivery(self) -> DeliveryContext:
        """The delivery's context, the same object for each of its attempts."""
        holder = self._holder
        if holder.delivery is None:
            holder.delivery = DeliveryContext()
        return holder.delivery

    @property
    def provider_settings(self) -> dict[str, Any]:
        return {} if self.is_default else dict(self.tenant.provider_settings)

    def credentials(self) -> dict[str, str]:
        """The tenant's credentials of its provider, read from their source now."""
        return {} if self.is_default else self._credentials(self.tenant)


class DeliveryHolder(Protocol):
    """Where a delivery keeps its context (the pipeline's per-delivery progress)."""

    delivery: DeliveryContext | None


def only_for(applies: Callable[[TenantConfig], bool]) -> Callable[[F], F]:
    """Mark an ``around_attempt`` wrapper that does something only for the tenants ``applies``
    accepts (the recorder: recording tenants); for the others the pipeline skips it, and an
    attempt no wrapper applies to costs no context, no generator and no extra coroutine."""

    def mark(function: F) -> F:
        function.applies_to = applies  # type: ignore[attr-defined]
        return function

    return mark


def applicable(wrappers: Sequence[HookImpl], tenant: TenantConfig) -> list[HookImpl]:
    """The ``wrappers`` that apply to ``tenant`` (see :func:`only_for`), in their order."""
    chosen = []
    for impl in wrappers:
        applies = getattr(impl.function, "applies_to", None)
        if applies is None or applies(tenant):
            chosen.append(impl)
    return chosen


async def run_wrapped(
    wrappers: Sequence[HookImpl],
    attempt: AttemptContext,
    send: Callable[[AttemptContext], Awaitable[Receipt]],
) -> Receipt:
    """``send(attempt)`` inside every wrapper (the last registered outermost, as pluggy)."""
    started: list[AttemptWrapper] = []
    for impl in reversed(wrappers):  # pluggy: later registered, called first
        try:
            generator = cast("AttemptWrapper", impl.function(attempt))
            next(generator)
        except Exception as exc:
            _log_failure(impl, "before the attempt", exc, attempt)
            continue
        started.append(generator)
    try:
        receipt = await send(attempt)
    except BaseException as exc:
        while started:
            _close(started.pop(), attempt, error=exc)
        raise
    while started:  # innermost first
        _close(started.pop(), attempt, receipt=receipt)
    return receipt


def _close(
    generator: AttemptWrapper,
    attempt: AttemptContext,
    *,
    receipt: Receipt | None = None,
    error: BaseException | None = None,
) -> None:
    """Resume one wrapper after the send; whatever it does, the outcome stands."""
    try:
        if error is not None:
            generator.throw(error)
        else:
            generator.send(receipt)  # type: ignore[arg-type]
    except StopIteration:
        return
    except BaseException as exc:
        if exc is error:
            return
        if not isinstance(exc, Exception):
            raise
        log.error(
            "an around_attempt wrapper failed after the attempt: %s",
            Masker((), attempt.message.code).line(f"{type(exc).__name__}: {exc}"),
        )
        return
    generator.close()  # it yielded twice: a bug, ended here
    log.error("an around_attempt wrapper yielded more than once")


def _log_failure(impl: HookImpl, when: str, exc: Exception, attempt: AttemptContext) -> None:
    detail = Masker((), attempt.message.code).line(f"{type(exc).__name__}: {exc}")
    log.error("around_attempt wrapper %s failed %s: %s", impl.plugin_name, when, detail)
