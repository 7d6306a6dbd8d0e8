"""The in-worker executor: run one compiled action against one event, report an InvocationResult.

This runs inside the isolated worker only. Every invocation gets fresh globals, builtins,
importer, ``api`` and output sink (never shared); the immutable tables they copy were built at
import. Timeouts and memory are enforced outside the process (wall-clock SIGKILL, RLIMIT_AS):
tenant code can catch any in-process exception, so nothing here tries; a ``MemoryError`` that
reaches the executor is still reported as ``memory_limit``.
"""

from __future__ import annotations

import json
import traceback
from time import perf_counter
from types import TracebackType
from typing import Any

import orjson

from runtime.sandbox.guest.api_stub import ApiChannel, build_api
from runtime.sandbox.guest.compiler import CompiledAction, CompileFailed, compile_action
from runtime.sandbox.guest.eventdata import EventData, dump_plain
from runtime.sandbox.guest.guards import OutputSink, make_globals
from runtime.sandbox.shared.contract import InvocationResult, Outcome, SandboxLimits, Trigger

__all__ = ["invoke_source", "run_action"]

MAX_ERROR = 2048
MAX_FRAMES = 20


def _describe(exc: BaseException) -> str:
    """``TypeName: message``, truncated; never fails, whatever the exception holds."""
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable message>"
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


def _tenant_frames(tb: TracebackType | None, compiled: CompiledAction) -> list[str]:
    """Traceback lines for frames of the tenant's file only: host frames never leave."""
    lines: list[str] = []
    filename = compiled.filename
    frames = [(f, n) for f, n in traceback.walk_tb(tb) if f.f_code.co_filename == filename]
    if len(frames) > MAX_FRAMES:
        lines.append(f"... {len(frames) - MAX_FRAMES} earlier frames omitted")
        frames = frames[-MAX_FRAMES:]
    for frame, lineno in frames:
        lines.append(f'File "{filename}", line {lineno}, in {frame.f_code.co_name}')
        if 0 < lineno <= len(compiled.source_lines):
            lines.append("    " + compiled.source_lines[lineno - 1].strip())
    return lines


def _check_result(value: Any, limits: SandboxLimits) -> tuple[Any, str | None, Outcome]:
    """``(plain JSON copy, None, "ok")`` or ``(None, why it is refused, the outcome)``."""
    if value is None:
        return None, None, "ok"
    problem = None
    try:
        text = dump_plain(value, allow_nan=False)
    except TypeError as exc:
        problem = f"handler returned a {type(value).__name__}, which is not JSON"
        if type(value) in (dict, list, tuple, EventData):
            problem = f"handler result is not JSON: {exc}"
    except ValueError as exc:
        problem = f"handler result is not JSON: {exc}"
    except RecursionError:
        problem = "handler result is nested too deeply"
    if problem is not None:
        return None, problem, "runtime_error"
    if len(text) > limits.max_result_bytes:
        size, cap = len(text), limits.max_result_bytes
        why = f"handler result is {size} bytes of JSON, over the limit of {cap} bytes"
        return None, why, "output_limit"
    plain = json.loads(text)
    try:
        orjson.dumps(plain)  # what carries it to the supervisor: integers must fit in 64 bits
    except TypeError:
        why = "handler result is not JSON the runtime can carry: integers beyond 64 bits"
        return None, why, "runtime_error"
    return plain, None, "ok"


def run_action(
    compiled: CompiledAction,
    event: dict[str, Any] | str | bytes | EventData,
    channel: ApiChannel,
    limits: SandboxLimits,
) -> InvocationResult:
    """Run ``compiled``'s handler with ``event`` and an ``api`` over ``channel``.

    ``event`` is a JSON object, as a dict or as its JSON text (both are copied), or an
    :class:`EventData` that nobody else holds (the worker adopts its freshly decoded frame: no
    copy). ``TypeError``/``ValueError`` if it is not one: that is the caller's bug, not the
    tenant's. Everything the tenant does ends up in the returned result.
    """
    started = perf_counter()
    event_data = EventData.from_event(event)
    sink = OutputSink(limits)
    api, notification = build_api(channel, compiled.trigger, sink, limits)
    namespace = make_globals(sink)
    outcome: Outcome = "ok"
    result: Any = None
    error: str | None = None
    frames: list[str] = []
    try:
        exec(compiled.code, namespace)  # RestrictedPython code in guarded globals
        value = namespace[compiled.handler](event_data, api)
    except MemoryError as exc:
        outcome, error = "memory_limit", _describe(exc)
        frames = _tenant_frames(exc.__traceback__, compiled)
    except BaseException as exc:  # any tenant failure is reported
        outcome, error = "runtime_error", _describe(exc)
        frames = _tenant_frames(exc.__traceback__, compiled)
    else:
        try:
            result, error, outcome = _check_result(value, limits)
        except MemoryError:
            outcome, error = "memory_limit", "MemoryError: while checking the handler result"
    if sink.overflowed and outcome != "memory_limit":
        outcome, result, frames = "output_limit", None, []
        error = f"print output passed the limit of {limits.max_output_bytes} bytes"
    return InvocationResult(
        outcome=outcome,
        result=result,
        error=error,
        traceback=frames,
        logs=sink.finish(),
        notification=notification.value,
        duration_ms=(perf_counter() - started) * 1000,
    )


def invoke_source(
    source: str | bytes,
    *,
    name: str,
    trigger: Trigger,
    event: dict[str, Any] | str | bytes | EventData,
    channel: ApiChannel,
    limits: SandboxLimits,
    digest: str | None = None,
    check_only: bool = False,
) -> InvocationResult:
    """Compile (cached; ``digest``: the source's sha256 if known) and run; a refused script is
    outcome ``compile_error``. ``check_only``: compile and stop (outcome ``ok``), running none
    of the script: how the service checks an upload."""
    started = perf_counter()
    try:
        compiled = compile_action(source, name=name, trigger=trigger, limits=limits, digest=digest)
    except CompileFailed as exc:
        return InvocationResult(
            outcome="compile_error",
            error=f"CompileError: {exc}"[:MAX_ERROR],
            compile_errors=exc.issues,
            duration_ms=(perf_counter() - started) * 1000,
        )
    except MemoryError:
        return InvocationResult(
            outcome="memory_limit",
            error="MemoryError: while compiling",
            duration_ms=(perf_counter() - started) * 1000,
        )
    if check_only:
        return InvocationResult(outcome="ok", duration_ms=(perf_counter() - started) * 1000)
    return run_action(compiled, event, channel, limits)
