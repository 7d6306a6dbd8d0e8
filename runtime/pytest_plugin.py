"""pytest plugin ``phone_actions``: replay recordings against actions and provider plugins.

Installed with the package (entry point ``pytest11``), so a test suite only uses the fixtures:

- ``phone_replay`` (session): a :class:`Replays` object. ``replay_action(script, recording)``
  and ``replay_provider(provider, recording)`` replay a whole recording and return a
  :class:`~runtime.recording.replay.ReplayReport`; ``run_action(script, recording, seq)`` and
  ``run_provider(provider, recording, seq)`` run one recorded attempt and return its
  :class:`~runtime.recording.replay.EventResult`. Recordings are paths or
  :class:`~runtime.recording.format.Recording` objects; providers are names of installed
  providers or provider objects. The methods are synchronous (each runs its own event loop),
  for plain ``def`` tests; the sandbox keeps one worker per tenant for the whole session.
- ``load_recording(path)``: a recording, read and validated.

Assertion helpers, importable from ``runtime.pytest_plugin``: :func:`assert_all_equal`,
:func:`assert_outcome`, :func:`assert_http_calls` and :func:`assert_logs`. Each failure message
says what differs. Disable the plugin with ``-p no:phone_actions``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported on first use: every pytest run loads this plugin
    from runtime.providers import Provider
    from runtime.recording.format import Recording
    from runtime.recording.replay import ActionReplayer, EventResult, ReplayReport

    RecordingLike = Recording | str | Path

__all__ = [
    "Replays",
    "assert_all_equal",
    "assert_http_calls",
    "assert_logs",
    "assert_outcome",
    "load_recording",
    "phone_replay",
]


def _recording(recording: RecordingLike) -> Recording:
    from runtime.recording.format import Recording

    return recording if isinstance(recording, Recording) else Recording.read(Path(recording))


class Replays:
    """Replays for one test session: one event loop, one sandbox per set of http hosts."""

    def __init__(self) -> None:
        import asyncio

        self._loop = asyncio.new_event_loop()
        self._sandboxes: dict[frozenset[str], ActionReplayer] = {}

    def close(self) -> None:
        for sandbox in self._sandboxes.values():
            self._loop.run_until_complete(sandbox.__aexit__(None, None, None))
        self._loop.close()

    def _sandbox(self, recording: Recording) -> ActionReplayer:
        from runtime.recording.replay import ActionReplayer, http_hosts

        hosts = frozenset(http_hosts(recording))
        sandbox = self._sandboxes.get(hosts)
        if sandbox is None:
            sandbox = ActionReplayer(allow_http_hosts=hosts)
            self._loop.run_until_complete(sandbox.__aenter__())
            self._sandboxes[hosts] = sandbox
        return sandbox

    def _provider(self, provider: Provider | str) -> Provider:
        if not isinstance(provider, str):
            return provider
        from runtime.plugins import collect_providers, get_plugin_manager
        from runtime.settings import Settings

        settings = Settings()
        return collect_providers(get_plugin_manager(settings=settings), settings).get(provider)

    def replay_action(
        self, script: str | Path, recording: RecordingLike, *, ignore_fields: Iterable[str] = ()
    ) -> ReplayReport:
        """Every attempt of ``recording`` that has a trigger event, against ``script``."""
        from runtime.recording.replay import ReplayReport

        loaded = _recording(recording)
        sandbox = self._sandbox(loaded)
        source = Path(script).read_bytes()
        ignore = frozenset([*loaded.header.ignore_fields, *ignore_fields])
        results, skipped = [], 0
        for record in loaded.attempts:
            if record.event is None:
                skipped += 1
                continue
            results.append(
                self._loop.run_until_complete(
                    sandbox.replay(record, source, name=Path(script).stem, ignore=ignore)
                )
            )
        return ReplayReport(loaded.path, results, skipped)

    def run_action(
        self,
        script: str | Path,
        recording: RecordingLike,
        seq: int = 1,
        *,
        ignore_fields: Iterable[str] = (),
    ) -> EventResult:
        """The attempt numbered ``seq`` of ``recording``, against ``script``."""
        loaded = _recording(recording)
        record = _attempt(loaded, seq)
        sandbox = self._sandbox(loaded)
        ignore = frozenset([*loaded.header.ignore_fields, *ignore_fields])
        return self._loop.run_until_complete(
            sandbox.replay(record, Path(script).read_bytes(), name=Path(script).stem, ignore=ignore)
        )

    def replay_provider(
        self,
        provider: Provider | str,
        recording: RecordingLike,
        *,
        ignore_fields: Iterable[str] = (),
    ) -> ReplayReport:
        """Every attempt of ``recording`` made by that provider, against the provider now."""
        from runtime.recording.replay import replay_recording

        chosen = self._provider(provider)
        return self._loop.run_until_complete(
            replay_recording(_recording(recording), provider=chosen, ignore_fields=ignore_fields)
        )

    def run_provider(
        self, provider: Provider | str, recording: RecordingLike, seq: int = 1
    ) -> EventResult:
        """The attempt numbered ``seq`` of ``recording``, against the provider."""
        from runtime.recording.replay import ProviderReplayer

        loaded = _recording(recording)
        replayer = ProviderReplayer(
            self._provider(provider), ignore_fields=loaded.header.ignore_fields
        )
        return self._loop.run_until_complete(replayer.replay(_attempt(loaded, seq)))


def _attempt(recording: Recording, seq: int) -> Any:
    for record in recording.attempts:
        if record.seq == seq:
            return record
    raise LookupError(f"{recording.path} has no attempt {seq} (it has {len(recording)})")


# -- assertion helpers -------------------------------------------------------------------------


def assert_all_equal(report: ReplayReport) -> None:
    """Every replayed attempt ended as recorded; the message lists each difference."""
    __tracebackhide__ = True
    if not report.results:
        pytest.fail(f"nothing replayed from {report.source} ({report.skipped} skipped)")
    changed = report.changed
    if changed:
        lines = [f"{len(changed)} of {len(report.results)} attempts differ:"]
        for result in changed:
            lines.append(f"  {result.label}: {result.recorded} -> {result.replayed}")
            lines.extend(f"    {difference}" for difference in result.differences)
        pytest.fail("\n".join(lines))


def assert_outcome(
    result: EventResult,
    outcome: str,
    *,
    handed_off: bool | None = None,
    notification: str | None = None,
    error_code: str | None = None,
) -> None:
    """The replayed outcome: an action's ``ok``/``runtime_error``/..., a provider's
    ``delivered``/``failed``; optionally the hand-off, the notification action
    (``retry``/``drop``) and a provider's error code."""
    __tracebackhide__ = True
    if result.invocation is not None:
        got: dict[str, Any] = {
            "outcome": result.invocation.outcome,
            "handed_off": result.invocation.handed_off,
            "notification": (result.invocation.notification or {}).get("action"),
            "error_code": None,
        }
    elif result.result is not None:
        got = {
            "outcome": result.result.outcome,
            "handed_off": result.result.handed_off,
            "notification": None,
            "error_code": result.result.error_code,
        }
    else:  # pragma: no cover - an EventResult always has one of them
        pytest.fail("nothing was replayed")
    wanted = {"outcome": outcome, "handed_off": handed_off, "notification": notification}
    wanted["error_code"] = error_code
    wrong = {k: (v, got[k]) for k, v in wanted.items() if v is not None and got[k] != v}
    if wrong:
        detail = ", ".join(f"{k}: expected {v!r}, got {g!r}" for k, (v, g) in wrong.items())
        error = (
            result.invocation.error if result.invocation else result.result and result.result.error
        )
        pytest.fail(f"{result.label}: {detail}" + (f" (error: {error})" if error else ""))


def assert_http_calls(
    result: EventResult, expected: Sequence[tuple[str, str]], *, all_recorded: bool = True
) -> None:
    """The requests made, as ``(METHOD, url)`` in order; a ``url`` may be a regular
    expression matched against the whole URL. With ``all_recorded`` (default), every request
    must also have been in the recording (none diverged)."""
    __tracebackhide__ = True
    made = [(r.method, r.url) for r in result.requests]
    matches = len(made) == len(expected) and all(
        method == want_method and (url == want_url or re.fullmatch(want_url, url) is not None)
        for (method, url), (want_method, want_url) in zip(made, expected, strict=True)
    )
    if not matches:
        pytest.fail(f"{result.label}: requests {made}, expected {list(expected)}")
    if all_recorded:
        missing = [f"{r.method} {r.url}" for r in result.requests if not r.served]
        if missing:
            pytest.fail(f"{result.label}: not in the recording (not sent): {missing}")


def assert_logs(
    result: EventResult,
    expected: Sequence[str] | None = None,
    *,
    contains: str | None = None,
    absent: str | None = None,
) -> None:
    """The action's log lines: exactly ``expected``, or some line containing ``contains``,
    or no line containing ``absent``."""
    __tracebackhide__ = True
    logs = result.logs
    if expected is not None and list(expected) != logs:
        pytest.fail(f"{result.label}: logs {logs}, expected {list(expected)}")
    if contains is not None and not any(contains in line for line in logs):
        pytest.fail(f"{result.label}: no log line contains {contains!r}: {logs}")
    if absent is not None and any(absent in line for line in logs):
        pytest.fail(f"{result.label}: a log line contains {absent!r}: {logs}")


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def phone_replay() -> Iterator[Replays]:
    """Replays of recordings against actions and provider plugins (see the module)."""
    replays = Replays()
    try:
        yield replays
    finally:
        replays.close()


@pytest.fixture
def load_recording() -> Callable[[str | Path], Recording]:
    """``load_recording(path)``: a recording, read and validated."""
    from runtime.recording.format import Recording

    return lambda path: Recording.read(Path(path))
