"""Replaying a recording against a tenant action or a provider plugin, offline.

Each recorded attempt is run again: an action in the real sandbox (:mod:`.actions`), a
provider plugin through its real ``send`` (:mod:`.providers`). Their HTTP is answered from the
recorded exchanges, in order (:mod:`.cursor`, :mod:`.taps`), and never reaches the network.
Then the new outcome is compared with the recorded one (:mod:`.report`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path

from runtime.providers import Provider
from runtime.recording.format import AttemptRecord, Recording
from runtime.recording.replay.actions import ActionReplayer, http_hosts
from runtime.recording.replay.cursor import Cursor, SentRequest
from runtime.recording.replay.providers import ProviderReplayer
from runtime.recording.replay.report import EventResult, ReplayReport
from runtime.recording.replay.taps import REPLAY_ADDRESS, ReplayObserver, ReplayTransport
from runtime.sandbox.shared.contract import SandboxLimits

__all__ = [
    "REPLAY_ADDRESS",
    "ActionReplayer",
    "Cursor",
    "EventResult",
    "ProviderReplayer",
    "ReplayObserver",
    "ReplayReport",
    "ReplayTransport",
    "SentRequest",
    "http_hosts",
    "in_order",
    "replay_recording",
]


async def replay_recording(
    recording: Recording,
    *,
    action: Path | None = None,
    action_source: str | bytes | None = None,
    provider: Provider | None = None,
    ignore_fields: Iterable[str] = (),
    limits: SandboxLimits | None = None,
    progress: Callable[[int], None] | None = None,
    attempt_timeout: float = 10.0,
    concurrency: int = 1,
) -> ReplayReport:
    """Replay every suitable attempt of ``recording`` against an action or a provider.

    Actions replay ``concurrency`` events at once, each in its own warm worker (see
    :class:`ActionReplayer` for when more than one is faithful); the report keeps the
    recording's order. Provider plugins replay one at a time.
    """
    ignore = frozenset([*recording.header.ignore_fields, *ignore_fields])
    if provider is not None:
        results: list[EventResult] = []
        skipped = 0
        replayer = ProviderReplayer(provider, ignore_fields=ignore, timeout=attempt_timeout)
        for record in recording.attempts:
            if record.provider != provider.name:
                skipped += 1
            else:
                results.append(await replayer.replay(record))
            if progress:
                progress(1)
        return ReplayReport(recording.path, results, skipped)
    if action_source is None:
        if action is None:
            raise ValueError("replay an action or a provider")
        action_source = await asyncio.to_thread(action.read_bytes)
    name = action.stem if action is not None else "action"
    source = action_source  # narrowed to a value, for the closure below
    runnable = [r for r in recording.attempts if r.event is not None and r.trigger is not None]
    skipped = len(recording.attempts) - len(runnable)
    if progress and skipped:
        progress(skipped)
    async with ActionReplayer(
        limits=limits,
        allow_http_hosts=http_hosts(recording),
        ignore_fields=ignore,
        concurrency=concurrency,
    ) as sandbox:

        async def replay_one(record: AttemptRecord) -> EventResult:
            result = await sandbox.replay(record, source, name=name)
            if progress:
                progress(1)
            return result

        replayed = await in_order(replay_one, runnable, concurrency)
    return ReplayReport(recording.path, replayed, skipped)


async def in_order(
    run: Callable[[AttemptRecord], Awaitable[EventResult]],
    records: Sequence[AttemptRecord],
    jobs: int,
) -> list[EventResult]:
    """``run`` over ``records`` with at most ``jobs`` at once; results in the records' order."""
    results: list[EventResult | None] = [None] * len(records)
    positions = iter(range(len(records)))

    async def lane() -> None:
        for position in positions:
            results[position] = await run(records[position])

    async with asyncio.TaskGroup() as group:  # one failing lane cancels the others
        for _ in range(min(jobs, len(records))):
            group.create_task(lane())
    return [r for r in results if r is not None]
