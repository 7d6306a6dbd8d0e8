"""Replaying recorded attempts against a tenant action, in the real sandbox.

Each attempt runs again with the recorded trigger event and stand-in secrets, in the tenant's
own warm worker, through the real egress checks; its HTTP is answered from the recording by
the egress's :class:`~runtime.recording.replay.taps.ReplayTransport` (never the network).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from runtime.observing import observed_by
from runtime.recording.format import ActionRecord, AttemptRecord, Recording
from runtime.recording.replay.cursor import Cursor
from runtime.recording.replay.report import EventResult, action_summary, compare_action
from runtime.recording.replay.taps import ReplayObserver, ReplayTransport, fixed_resolver
from runtime.sandbox.host.egress import EgressPolicy
from runtime.sandbox.host.runner import SandboxRunner
from runtime.sandbox.shared.contract import SandboxLimits, Trigger
from runtime.sandbox.shared.oslayers import OsIsolation, isolation_from_settings

__all__ = ["ActionReplayer", "http_hosts"]

_UNLIMITED = 10**9


class ActionReplayer:
    """Replays recorded attempts against an action script, in one sandbox with up to
    ``concurrency`` warm workers per tenant. Use as an async context manager.

    One worker (the default) replays the events in order in one warm worker, as they ran: an
    action that keeps state between invocations (a cached OAuth token) behaves as recorded.
    More workers are faster but only faithful for actions that keep nothing: a new worker's
    first event starts cold (it fetches the token again: a divergence).
    """

    def __init__(
        self,
        *,
        limits: SandboxLimits | None = None,
        allow_http_hosts: Iterable[str] = (),
        ignore_fields: Iterable[str] = (),
        concurrency: int = 1,
        isolation: OsIsolation | None = None,
    ) -> None:
        """``isolation``: the OS layers the workers get; by default the ones the settings ask
        for (``PHONE_ACTIONS_SANDBOX_NAMESPACES``, ``..._CGROUP_DIR``...), as for every other
        sandbox of this installation."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if isolation is None:  # a bad setting: one ConfigurationError naming the variable
            from runtime.settings import load_settings

            isolation = isolation_from_settings(load_settings())
        self.ignore = frozenset(ignore_fields)
        self.concurrency = concurrency
        self.runner = SandboxRunner(
            limits=limits,
            policy=EgressPolicy(
                allow_http_hosts=frozenset(allow_http_hosts),
                max_requests_per_tenant_per_minute=_UNLIMITED,
            ),
            max_workers=max(8, concurrency),
            max_workers_per_tenant=concurrency,
            resolver=fixed_resolver,
            transport_factory=ReplayTransport,
            isolation=isolation,
        )

    async def __aenter__(self) -> ActionReplayer:
        await self.runner.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.runner.aclose()

    async def replay(
        self,
        record: AttemptRecord,
        source: str | bytes,
        *,
        name: str = "action",
        trigger: Trigger | None = None,
        ignore: frozenset[str] | None = None,
    ) -> EventResult:
        chosen = trigger or record.trigger
        if record.event is None or chosen not in ("send-phone-message", "custom-phone-provider"):
            raise ValueError(f"attempt {record.seq} has no trigger event to replay")
        cursor = Cursor(record.exchanges)
        with observed_by(ReplayObserver(cursor, name)):  # read by the egress's ReplayTransport
            result = await self.runner.run(
                tenant=record.tenant,
                name=name,
                source=source,
                trigger=chosen,  # type: ignore[arg-type]
                event=record.event,
                secrets=record.secrets,
            )
        was = record.action or ActionRecord(outcome="?")
        differences = compare_action(
            record, result, cursor.sent, self.ignore if ignore is None else ignore
        )
        return EventResult(
            record=record,
            recorded=action_summary(was.outcome, was.handed_off, was.notification),
            replayed=action_summary(result.outcome, result.handed_off, result.notification),
            differences=differences,
            requests=cursor.sent,
            invocation=result,
        )


def http_hosts(recording: Recording) -> set[str]:
    """``host:port`` of every plain-http URL in the recording (the egress must allow them)."""
    hosts = set()
    for attempt in recording.attempts:
        for exchange in attempt.exchanges:
            parts = urlsplit(exchange.request.url)
            if parts.scheme == "http" and parts.hostname:
                hosts.add(f"{parts.hostname}:{parts.port or 80}")
    return hosts
