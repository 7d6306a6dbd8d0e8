"""Shared vocabulary of the sandbox: limits, compile issues, outcomes and invocation results.

Everything here is plain data that crosses the process boundary as JSON. The worker is
untrusted once tenant code has run, so the supervisor re-validates whatever it reads back.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "HANDLERS",
    "CompileIssue",
    "HttpCall",
    "InvocationResult",
    "Outcome",
    "SandboxLimits",
    "Trigger",
]

Trigger = Literal["send-phone-message", "custom-phone-provider"]
Outcome = Literal[
    "ok",
    "compile_error",
    "runtime_error",
    "timeout",
    "memory_limit",
    "output_limit",
    "worker_killed",
]

HANDLERS: dict[str, str] = {
    "send-phone-message": "on_execute_send_phone_message",
    "custom-phone-provider": "on_execute_custom_phone_provider",
}
"""The function each trigger calls in a tenant's action."""


class SandboxLimits(BaseModel):
    """Per-invocation limits; defaults follow Auth0 where it documents one."""

    model_config = ConfigDict(frozen=True)

    max_source_bytes: int = 100 * 1024
    max_nodes: int = 20_000
    max_depth: int = 60
    timeout: float = Field(default=5.0, gt=0, description="Wall-clock budget, seconds.")
    cpu_seconds: int = 5
    memory_bytes: int = 256 * 1024 * 1024
    max_log_lines: int = 200
    max_log_line_bytes: int = 2048
    max_output_bytes: int = 64 * 1024
    max_result_bytes: int = 256 * 1024
    max_http_requests: int = 20
    max_http_response_bytes: int = 1024 * 1024
    max_http_request_bytes: int = 256 * 1024
    max_secrets: int = 30
    max_invocations_per_worker: int = 10_000


class CompileIssue(BaseModel):
    """One reason a script was refused: where (1-based line, 0-based column) and why."""

    line: int | None = None
    column: int | None = None
    message: str


class HttpCall(BaseModel):
    """One ``api.http`` call as the supervisor saw it (never headers or bodies: secrets)."""

    method: str
    url: str
    status: int | None = None
    duration_ms: float
    error: str | None = None


class InvocationResult(BaseModel):
    """How one invocation ended. ``error`` carries the tenant's own traceback, never host frames.

    ``handed_off`` is true when the action got a 2xx answer to any HTTP call: the message may
    have reached a provider, so the pipeline must not fall back. ``notification`` is the last
    ``api.notification.drop/retry`` call of a custom-phone-provider action, if any.
    """

    outcome: Outcome
    result: Any = None
    error: str | None = None
    traceback: list[str] = Field(default_factory=list)
    compile_errors: list[CompileIssue] = Field(default_factory=list)
    logs: list[str] = Field(default_factory=list)
    http: list[HttpCall] = Field(default_factory=list)
    handed_off: bool = False
    notification: dict[str, str] | None = None
    duration_ms: float = 0.0
