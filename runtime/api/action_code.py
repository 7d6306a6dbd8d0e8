"""What the actions routes share: checking a script in the sandbox before it is stored, and
telling the pipeline's tenant directory that a tenant's configuration changed.

A script is compiled in a sandbox worker of the calling tenant (:meth:`SandboxRunner.check`),
never in this process: the parser and RestrictedPython's compiler are DoS surfaces
(docs/sandbox.md), and a worker is bounded by the sandbox's limits and the tenant's share of
workers. Nothing of the script runs during the check.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import Request

from runtime.api.errors import ApiError
from runtime.errors import LimitExceededError, StoreUnavailableError
from runtime.store.service.limits import MAX_CODE_BYTES, TRIGGERS

if TYPE_CHECKING:
    from runtime.api.deps import Services
    from runtime.sandbox.shared.contract import CompileIssue, Trigger

__all__ = [
    "check_code",
    "compile_message",
    "ensure_sandbox",
    "refresh_directory",
    "script_name",
    "trigger_of",
]

log = logging.getLogger("runtime.api.actions")

_SHOWN = 5  # compile issues named in one message; the rest are counted


def trigger_of(supported_triggers: Any) -> Trigger | None:
    """The one trigger an action targets, when ``supported_triggers`` names a known one
    (otherwise the store refuses the value, naming the field)."""
    if isinstance(supported_triggers, list) and len(supported_triggers) == 1:
        item = supported_triggers[0]
        trigger = item.get("id") if isinstance(item, dict) else None
        if trigger in TRIGGERS:
            return trigger  # type: ignore[no-any-return]
    return None


def script_name(name: str, action_id: str | None = None) -> str:
    """The name the sandbox gives the script in tracebacks (``<action:NAME>``): the action's
    own when it fits the sandbox's rule (1-200 printable characters), else its id."""
    if 0 < len(name) <= 200 and name.isprintable():
        return name
    return action_id or "action"


def compile_message(issues: Sequence[CompileIssue]) -> str:
    """One line naming each issue's line and column."""
    parts = []
    for issue in issues[:_SHOWN]:
        where = ""
        if issue.line is not None:
            where = f"line {issue.line}" + (
                f", column {issue.column}: " if issue.column is not None else ": "
            )
        parts.append(where + issue.message)
    more = len(issues) - _SHOWN
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


async def check_code(
    request: Request, svc: Services, tenant: str, *, name: str, code: object, trigger: Any
) -> None:
    """Refuse ``code`` with 400 naming its lines unless it compiles for ``trigger``; 503
    when the sandbox cannot check it. A value of the wrong type or size, or an unknown
    trigger, is left to the store, which names the field."""
    from runtime.sandbox.host.runner import SandboxCheckError

    if not isinstance(code, str) or trigger not in TRIGGERS:
        return
    size = len(code.encode("utf-8", "surrogatepass"))
    if size > MAX_CODE_BYTES:  # before the sandbox: the store's own refusal, sooner
        raise LimitExceededError(
            f"{size} bytes; the limit is {MAX_CODE_BYTES} bytes (100 kB)", field="code"
        )
    await ensure_sandbox(request)
    try:
        issues = await svc.runner.check(
            tenant=tenant, name=script_name(name), source=code, trigger=trigger
        )
    except (SandboxCheckError, OSError, RuntimeError) as exc:
        log.warning("tenant %s: the sandbox could not check a script: %s", tenant, exc)
        raise ApiError(
            503, "The sandbox could not check the code; try again later.", "sandbox_unavailable"
        ) from None
    if issues:
        raise ApiError(
            400,
            f"Payload validation error: 'does not compile: {compile_message(issues)}' "
            "on property code.",
            "invalid_code",
        )


async def ensure_sandbox(request: Request) -> None:
    """Wait for the sandbox's one start task (shared with /readyz); 503 when it fails, and
    the next request starts it again."""
    from runtime.api.app import sandbox_started

    try:
        await sandbox_started(request.app)
    except Exception as exc:
        request.app.state.sandbox_start = None
        log.warning("the sandbox cannot start: %s", exc)
        raise ApiError(
            503, "The sandbox is unavailable; try again later.", "sandbox_unavailable"
        ) from None


async def refresh_directory(svc: Services) -> None:
    """Make a committed change live on this node now (the directory's polling makes it live
    within its period anyway, here and on every other node). A refresh that cannot run now
    (database slow, refresh queue full) is logged, never turned into an error: the change is
    stored."""
    try:
        await svc.directory.refresh()
    except StoreUnavailableError as exc:
        log.info("tenant directory refresh deferred to its polling: %s", exc)
