"""The sandbox as the rest of the runtime sees it: one object that runs tenant actions.

It wires the worker pool (layers a-c in worker processes) to the supervisor services (layer d:
HTTP egress and the per-tenant cache), puts the calling tenant's own secrets into the event,
and masks those secrets and the event's code out of everything that comes back (result, logs,
errors, tracebacks, HTTP records), with control characters escaped, since a worker is untrusted
and may echo them (:mod:`runtime.masking`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from runtime.events import MAX_EVENT_CODE
from runtime.masking import Masker, code_of_event, escape_controls, install_log_masking, masking
from runtime.sandbox.guest.oslimits import seccomp_status
from runtime.sandbox.host.cache import ActionCache
from runtime.sandbox.host.egress import Egress, EgressPolicy, Resolver
from runtime.sandbox.host.pool import SandboxPool
from runtime.sandbox.host.services import SupervisorServices
from runtime.sandbox.shared.contract import CompileIssue, InvocationResult, SandboxLimits, Trigger
from runtime.sandbox.shared.masker import (
    MASK_BUDGET,
    SecretForms,
    compiled_forms,
    forms_compiled,
    secrets_key,
)
from runtime.sandbox.shared.oslayers import OsIsolation

__all__ = ["SECRET_NAME", "SECRET_NAME_PATTERN", "SandboxCheckError", "SandboxRunner"]

log = logging.getLogger("runtime.sandbox.host.runner")

COMPILES = 2
"""New sets of secrets compiled at once, for every tenant together."""

MAX_SECRET_CHARS = 4096
"""The longest secret value an invocation takes (the store's limit, for secrets given with a
test payload too): the supervisor compiles every set it is given."""

SECRET_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
"""The one rule for an action secret's name, wherever one is given (the Management API, a
tenants file's ``credentials_env``, ``test-action --secret``): as Auth0's, letters, digits and
``_``, not starting with a digit, at most 128 characters, case-sensitive (``sms_key`` and
``SMS_KEY`` are two secrets). The action reads it as ``event.secrets.NAME``."""
SECRET_NAME = re.compile(SECRET_NAME_PATTERN)

# Tenant URLs, host names and refusal texts reach the sandbox's loggers during an invocation.
install_log_masking("runtime.sandbox")


class SandboxRunner:
    """Runs tenant actions in the sandbox; start it once, close it at shutdown."""

    def __init__(
        self,
        *,
        limits: SandboxLimits | None = None,
        policy: EgressPolicy | None = None,
        max_workers: int = 64,
        max_workers_per_tenant: int = 2,
        require_seccomp: bool = False,
        isolation: OsIsolation | None = None,
        resolver: Resolver | None = None,
        transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.limits = limits or SandboxLimits()
        self._egress = Egress(
            policy or EgressPolicy(),
            self.limits,
            resolver=resolver,
            transport_factory=transport_factory,
        )
        self._services = SupervisorServices(self._egress, ActionCache())
        self.pool = SandboxPool(
            self._services,
            limits=self.limits,
            max_workers=max_workers,
            max_workers_per_tenant=max_workers_per_tenant,
            require_seccomp=require_seccomp,
            isolation=isolation,
        )
        self._started = False
        self._closed = False
        # New sets of secrets compile on threads, at most COMPILES at once, and a tenant's one
        # after another: a tenant saving or testing new sets cannot take every thread.
        self._compile_slots = asyncio.Semaphore(COMPILES)
        self._compiling: dict[str, asyncio.Future[None]] = {}  # a tenant's compile in flight
        # their own threads, never asyncio's default pool (other tenant-driven work uses it)
        self._compilers = ThreadPoolExecutor(COMPILES, thread_name_prefix="phone-actions-secrets")

    async def start(self) -> None:
        if self._closed:
            raise RuntimeError("the sandbox runner is closed")
        if not self._started:
            await self.pool.start()
            install_log_masking("runtime.sandbox")  # loggers of modules imported since
            self._started = True

    async def aclose(self) -> None:
        """Stop the workers and close the services; idempotent (two providers share one)."""
        if self._closed:
            return
        self._closed = True
        await self.pool.aclose()
        await self._services.aclose()
        self._compilers.shutdown(wait=False)  # a compile under way ends alone

    async def __aenter__(self) -> SandboxRunner:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    def _limits_within(self, budget: float | None) -> SandboxLimits:
        if budget is None or budget >= self.limits.timeout:
            return self.limits
        return self.limits.model_copy(update={"timeout": budget})

    @staticmethod
    def seccomp() -> tuple[bool, str]:
        """Whether workers get a seccomp filter here, and why not when they don't."""
        return seccomp_status()

    async def run(
        self,
        *,
        tenant: str,
        name: str,
        source: str | bytes,
        trigger: Trigger,
        event: dict[str, Any],
        secrets: dict[str, str] | None = None,
        budget: float | None = None,
    ) -> InvocationResult:
        """Run ``trigger``'s handler of ``source`` for ``tenant`` with ``event``.

        ``secrets`` (the tenant's own) replace whatever ``event["secrets"]`` held. Those
        secrets and the event's code are masked out of everything that comes back, and out of
        the sandbox's operator logs meanwhile (:mod:`runtime.masking`). ``budget`` shortens
        the sandbox's wall-clock budget, in seconds (never lengthens it).
        """
        code = code_of_event(event)
        if code is not None and len(code) > MAX_EVENT_CODE:  # masking's work grows with it
            raise ValueError(
                f"the event's code has {len(code)} characters; the limit is {MAX_EVENT_CODE}"
            )
        if code is not None and not (code.isascii() and code.isalnum()):
            raise ValueError("the event's code must be letters and digits only")
        await self.start()
        secrets = dict(secrets or {})
        if len(secrets) > self.limits.max_secrets:
            raise ValueError(f"at most {self.limits.max_secrets} secrets per action")
        for secret_name, value in secrets.items():
            if not SECRET_NAME.fullmatch(secret_name):
                raise ValueError(f"secret name {secret_name!r} must match {SECRET_NAME_PATTERN}")
            if len(value) > MAX_SECRET_CHARS:  # as the store keeps them: masking's cost too
                raise ValueError(
                    f"secret {secret_name!r} has {len(value)} characters; the limit is "
                    f"{MAX_SECRET_CHARS}"
                )
        key = secrets_key(secrets.values())
        # a new set of secrets takes up to seconds to compile: never on this loop, and the
        # masker keeps what the thread made (other tenants' sets may evict it meanwhile)
        forms = None
        if key:
            forms = (
                compiled_forms(key, tenant)
                if forms_compiled(key)
                else await self._compile(tenant, key)
            )
        if forms is not None and forms.costly:  # said before the masking: the operator sees it
            _say_costly(tenant, key)
        masker = Masker(secrets.values(), code, forms=forms, budget=MASK_BUDGET)
        with masking(masker):
            result = await self.pool.invoke(
                tenant=tenant,
                name=name,
                source=source,
                trigger=trigger,
                event={**event, "secrets": secrets},
                limits=self._limits_within(budget),
            )
        shown = masked_result(result, masker)
        if masker.budget_spent:  # said, with the tenant's id, so that the operator knows why
            log.warning(
                "tenant %s: an invocation of %r spent its masking budget; its later HTTP "
                "records and sandbox log lines were masked whole",
                tenant,
                name,
            )
        return shown

    async def _compile(self, tenant: str, key: tuple[str, ...]) -> SecretForms:
        """Compile a new set of ``tenant``'s secrets on a thread: one of the tenant's at a
        time, at most :data:`COMPILES` in all (the thread holds the GIL much of the time).
        A compile holds its place until its thread ends, even when its caller left (the
        thread runs on), so callers that give up cannot start more threads."""
        loop = asyncio.get_running_loop()
        while (running := self._compiling.get(tenant)) is not None and not running.done():
            await asyncio.wait([running])  # the tenant's compile in flight, to its end
        if forms_compiled(key):  # the same set, compiled while this one waited
            return compiled_forms(key, tenant)
        turn: asyncio.Future[None] = loop.create_future()  # set with no await since the check
        self._compiling[tenant] = turn

        def ended(_: object = None) -> None:
            if not turn.done():
                turn.set_result(None)
            if self._compiling.get(tenant) is turn:
                del self._compiling[tenant]

        try:
            await self._compile_slots.acquire()
        except BaseException:
            ended()
            raise
        try:
            work = loop.run_in_executor(self._compilers, compiled_forms, key, tenant)
        except BaseException:  # the runner closed meanwhile: its threads are gone
            self._compile_slots.release()
            ended()
            raise

        def finished(_: object) -> None:
            self._compile_slots.release()  # only now: the thread is done
            ended()

        work.add_done_callback(finished)
        return await asyncio.shield(work)

    async def check(
        self, *, tenant: str, name: str, source: str | bytes, trigger: Trigger
    ) -> list[CompileIssue]:
        """Compile ``source`` in a worker of ``tenant`` (the parser and compiler are DoS
        surfaces: never in this process) and run none of it. Returns every issue with its
        line, or ``[]``; raises :class:`SandboxCheckError` when the check itself could not
        finish (timeout, sandbox unavailable)."""
        await self.start()
        result = await self.pool.invoke(
            tenant=tenant, name=name, source=source, trigger=trigger, event={}, check=True
        )
        if result.outcome == "compile_error":
            return list(result.compile_errors)
        if result.outcome != "ok":
            raise SandboxCheckError(f"{result.outcome}: {result.error or 'no detail'}")
        return []


class SandboxCheckError(RuntimeError):
    """The compile check did not finish (its outcome and error in the message)."""


_COSTLY_SAID: dict[tuple[str, tuple[str, ...]], None] = {}  # (tenant, set): warned once


def _say_costly(tenant: str, key: tuple[str, ...]) -> None:
    """Warn once per tenant and set of secrets that its sandbox texts are masked whole."""
    if (tenant, key) in _COSTLY_SAID:
        return
    _COSTLY_SAID[(tenant, key)] = None
    while len(_COSTLY_SAID) > 256:
        _COSTLY_SAID.pop(next(iter(_COSTLY_SAID)))
    log.warning(
        "tenant %s: its secrets are shaped so that masking with them would cost too much "
        "here; its HTTP records and the sandbox's log lines about its invocations are masked "
        "whole",
        tenant,
    )


def masked_result(result: InvocationResult, masker: Masker) -> InvocationResult:
    """``result`` as it may be shown: secrets and code masked everywhere, and the text fields
    (one line each) with control characters escaped. ``result.result`` stays data (masked,
    not escaped): whoever prints it encodes it as JSON.

    The worker masked everything its tenant's code produced itself, at the tenant's cost:
    the result and logs (up to 256 KiB and 400 KiB of tenant text), the error, traceback,
    compile errors and notification (secrets chosen for it make masking cost milliseconds a
    KiB; here, on this event loop, that would delay every tenant). A worker that did not
    could show the tenant only its own secrets and code, which its code can spell in an
    encoding no mask recognises anyway. Here those fields' control characters are escaped
    again (one search when the worker did it), and the HTTP records, which this process
    builds, are masked, within the invocation's budget (:data:`MASK_BUDGET`)."""
    line = masker.line
    cut = masker.cut_line  # fields capped in length: a secret may be cut in two at the end
    return result.model_copy(
        update={
            "logs": [escape_controls(text) for text in result.logs],
            "error": escape_controls(result.error) if result.error else result.error,
            "traceback": [escape_controls(text) for text in result.traceback],
            "compile_errors": [
                issue.model_copy(update={"message": escape_controls(issue.message)})
                for issue in result.compile_errors
            ],
            "http": [
                call.model_copy(
                    update={
                        "url": line(call.url),
                        "error": cut(call.error) if call.error else call.error,
                    }
                )
                for call in result.http
            ],
            "notification": (
                {escape_controls(k): escape_controls(v) for k, v in result.notification.items()}
                if result.notification
                else result.notification
            ),
        }
    )
