"""Prometheus metrics of the service, served at ``/metrics`` (docs/operations.md).

Labels carry only the tenant id, provider name, channel, outcome and a reason from a fixed
vocabulary: never a phone number, user, code or text. A tenant id becomes a label only once
the tenant was found (an unknown tenant is counted as ``_unknown``), so a caller cannot grow
the series by inventing ids. Everything lives in one :data:`REGISTRY` of this module (not
prometheus-client's global one), so a test can read it and an embedding app keeps its own.

Counting a report is a few dictionary updates on the event loop (no I/O); sandbox counts are
read from the pool when Prometheus scrapes, never pushed from the workers.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from runtime.events import DeliveryReport

__all__ = [
    "CONTENT_TYPE",
    "REGISTRY",
    "UNKNOWN_TENANT",
    "forget_log_stream",
    "observe_code_check",
    "observe_log_stream",
    "observe_receipt",
    "observe_report",
    "render",
    "watch_sandbox",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNKNOWN_TENANT = "_unknown"
REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES = Counter(
    "phone_actions_messages",
    "Deliveries by final status (delivered, stored, rejected, failed, retrying).",
    ["tenant", "provider", "channel", "outcome"],
    registry=REGISTRY,
)
ATTEMPTS = Counter(
    "phone_actions_attempts",
    "Provider attempts by outcome (delivered, failed).",
    ["tenant", "provider", "channel", "outcome"],
    registry=REGISTRY,
)
ATTEMPT_SECONDS = Histogram(
    "phone_actions_attempt_seconds",
    "Time of one provider attempt, seconds.",
    ["provider", "channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0),
    registry=REGISTRY,
)
FALLBACKS = Counter(
    "phone_actions_fallbacks",
    "Deliveries that fell back to the default sender, by the fallback's outcome.",
    ["tenant", "channel", "outcome"],
    registry=REGISTRY,
)
REFUSALS = Counter(
    "phone_actions_rate_limited",
    "Requests refused by the phone limits, by rule (ip, recipient, user_messages, ...).",
    ["tenant", "channel", "rule"],
    registry=REGISTRY,
)
RECEIPTS = Counter(
    "phone_actions_receipts",
    "Carriers' delivery receipts accepted, by final status (delivered, undelivered).",
    ["tenant", "provider", "status"],
    registry=REGISTRY,
)
RECEIPTS_REFUSED = Counter(
    "phone_actions_receipts_refused",
    "Receipt callbacks refused: a missing or bad signature, or an unknown delivery.",
    ["provider", "reason"],
    registry=REGISTRY,
)
USAGE_TRIGGERS_FIRED = Counter(
    "phone_actions_usage_triggers_fired",
    "Usage triggers that crossed their threshold (one per trigger and period).",
    ["tenant", "period"],
    registry=REGISTRY,
)
CODE_CHECKS = Counter(
    "phone_actions_code_checks",
    "Verify API code checks by flow (enrollment, challenge) and outcome "
    "(succeeded, failed, expired, exhausted): the other side of the sends, for pumping.",
    ["tenant", "flow", "outcome"],
    registry=REGISTRY,
)
LOG_STREAM_LAG = Gauge(
    "phone_actions_log_stream_lag_seconds",
    "Age of the oldest log event a stream has not delivered yet (0: caught up).",
    ["tenant", "stream"],
    registry=REGISTRY,
)
LOG_STREAM_FAILURES = Counter(
    "phone_actions_log_stream_failures",
    "Batches a log stream's sink did not accept (each is retried).",
    ["tenant", "stream"],
    registry=REGISTRY,
)


class _HeapCollector(Collector):
    """How many objects the collector's full passes leave out (:func:`runtime.heap.settle`):
    0 on a service that is up means every full pass walks its whole heap again."""

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "phone_actions_heap_frozen_objects",
            "Objects kept out of the garbage collector's full passes since start-up.",
            value=float(gc.get_freeze_count()),
        )


REGISTRY.register(_HeapCollector())
GCCollector(registry=REGISTRY)  # python_gc_*: passes and what they found, per generation

_SEEN: set[str] = set()  # tenants found at least once by a delivery of this process
_KNOWN_LIMIT = 100_000  # beyond this many distinct tenants, new ones share UNKNOWN_TENANT


def _tenant(report: DeliveryReport) -> str:
    """The tenant's label: its id once a delivery found it, else :data:`UNKNOWN_TENANT`."""
    tenant = report.tenant
    if tenant in _SEEN:
        return tenant
    if report.reason in ("unknown_tenant", "tenant_unusable") or len(_SEEN) >= _KNOWN_LIMIT:
        return UNKNOWN_TENANT
    _SEEN.add(tenant)
    return tenant


def observe_report(report: DeliveryReport) -> None:
    """Count one delivery's report: its outcome, its attempts, a fallback, a refusal."""
    if report.replayed:  # an answer for a repeated idempotency key: counted the first time
        return
    tenant = _tenant(report)
    channel = report.channel
    attempts = report.attempts
    provider = report.delivered_by or (attempts[-1].provider if attempts else "none")
    MESSAGES.labels(tenant, provider, channel, report.status).inc()
    for attempt in attempts:
        ATTEMPTS.labels(tenant, attempt.provider, channel, attempt.outcome).inc()
        ATTEMPT_SECONDS.labels(attempt.provider, channel).observe(attempt.latency_ms / 1000)
        if attempt.fallback:
            FALLBACKS.labels(tenant, channel, attempt.outcome).inc()
    if report.reason == "rate_limited":
        REFUSALS.labels(tenant, channel, report.limit or "unknown").inc()


def observe_receipt(tenant: str, provider: str, status: str) -> None:
    """Count a receipt recorded for a delivery of ``tenant`` (a known tenant: it was signed)."""
    RECEIPTS.labels(tenant, provider, status).inc()


def observe_receipt_refused(provider: str, reason: str) -> None:
    """Count a refused callback; ``provider`` is one of the receipt routes' fixed names."""
    RECEIPTS_REFUSED.labels(provider, reason).inc()


def observe_usage_trigger(tenant: str, period: str) -> None:
    USAGE_TRIGGERS_FIRED.labels(tenant, period).inc()


_CHECK_OUTCOMES = {"ok": "succeeded", "expired": "expired", "exhausted": "exhausted"}


def observe_code_check(tenant: str, flow: str, outcome: str) -> None:
    """Count one code check of the Verify API. ``tenant`` is the caller's (authenticated), ``flow``
    enrollment or challenge; the store's outcome folds into four values so the series stay few:
    wrong, used, not_sent and not_found are all ``failed``."""
    CODE_CHECKS.labels(tenant, flow, _CHECK_OUTCOMES.get(outcome, "failed")).inc()


def observe_log_stream(
    tenant: str, stream: str, *, lag_seconds: float | None = None, failed: bool = False
) -> None:
    """For the log streams' delivery job: the stream's lag after a run, and a failed batch."""
    if lag_seconds is not None:
        LOG_STREAM_LAG.labels(tenant, stream).set(max(lag_seconds, 0.0))
    if failed:
        LOG_STREAM_FAILURES.labels(tenant, stream).inc()


def forget_log_stream(tenant: str, stream: str) -> None:
    """A deleted stream's series go with it (a stale lag would skew alerts; the labels'
    cardinality would only grow)."""
    for metric in (LOG_STREAM_LAG, LOG_STREAM_FAILURES):
        with contextlib.suppress(KeyError):
            metric.remove(tenant, stream)


class _SandboxCollector(Collector):
    """The sandbox pool's own counts (timeouts, kills), read when Prometheus scrapes."""

    def __init__(self, stats: Callable[[], dict[str, Any]]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        try:
            stats = self._stats()
        except Exception:  # a pool being closed: no sandbox series this scrape
            return
        outcomes = CounterMetricFamily(
            "phone_actions_sandbox_invocations",
            "Tenant action invocations by outcome (ok, timeout, memory, worker_killed, ...).",
            labels=["outcome"],
        )
        for outcome, count in sorted(dict(stats.get("outcomes", {})).items()):
            outcomes.add_metric([str(outcome)], float(count))
        yield outcomes
        workers = CounterMetricFamily(
            "phone_actions_sandbox_workers",
            "Sandbox worker lifecycle events (spawned, recycled, killed, evicted).",
            labels=["event"],
        )
        for event in ("spawned", "recycled", "killed", "evicted"):
            workers.add_metric([event], float(stats.get(event, 0)))
        yield workers


_sandbox: _SandboxCollector | None = None


def watch_sandbox(stats: Callable[[], dict[str, Any]] | None) -> None:
    """Read the sandbox counts from ``stats`` (the pool's ``stats``) from now on; None stops."""
    global _sandbox
    if _sandbox is not None:
        REGISTRY.unregister(_sandbox)
        _sandbox = None
    if stats is not None:
        _sandbox = _SandboxCollector(stats)
        REGISTRY.register(_sandbox)


def render() -> bytes:
    """The text exposition of every metric."""
    return generate_latest(REGISTRY)
