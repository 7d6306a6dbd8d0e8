"""``phone-actions replay``: deliver recorded events again, or compare recordings.

``replay FILES...`` delivers event files through the pipeline; ``replay RECORDINGS...
--action SCRIPT | --provider NAME`` replays recordings offline and compares each attempt
with what was recorded. Kept apart from :mod:`runtime.cli` (and its imports kept inside the
functions) so that ``phone-actions --help`` imports none of it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from runtime.console import SUCCESS, bad_input, settings_or_exit

if TYPE_CHECKING:
    from runtime.delivery import Pipeline
    from runtime.events import DeliveryReport, PhoneMessageRequest
    from runtime.providers import Provider
    from runtime.recording.format import Recording
    from runtime.recording.replay import ReplayReport

__all__ = [
    "EXIT_DIFFERENT",
    "PROGRESS_THRESHOLD",
    "replay_events_command",
    "replay_recordings_command",
]

PROGRESS_THRESHOLD = 50
"""Recordings with more attempts than this (in all) show a progress bar (not with --json)."""
EXIT_DIFFERENT = 1
"""An attempt differs, or a recording had nothing to compare against the target."""
EXIT_NOT_DELIVERED = 1

T = TypeVar("T")
Runner = Callable[[Callable[["Pipeline"], Awaitable[T]]], T]


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, separators=(",", ":"), default=str))


# -- event files through the pipeline -----------------------------------------------------


def replay_events_command(
    paths: list[Path],
    *,
    tenant: str | None,
    as_json: bool,
    run: Runner[list[tuple[str, DeliveryReport | str]]],
) -> None:
    """Deliver each event file (a bad file is reported and does not stop the others)."""
    from runtime.errors import PhoneActionsError
    from runtime.events import PhoneMessageRequest, parse_event
    from runtime.recording.format import is_recording
    from runtime.wording import plain

    if tenant is not None and not tenant:  # not "no --tenant": the events' own tenants
        raise bad_input("--tenant: must not be empty (without it, each event's tenant.id)")
    recordings = [str(path) for path in paths if is_recording(path)]
    if recordings:
        raise bad_input(
            f"{recordings[0]} is a recording: replay it with --action SCRIPT or --provider NAME"
        )
    parsed: list[tuple[str, PhoneMessageRequest | str]] = []
    for path in paths:
        try:
            event = parse_event(path.read_bytes())
            parsed.append((path.name, PhoneMessageRequest.from_event(event, tenant=tenant)))
        except OSError as exc:
            parsed.append((path.name, f"cannot read: {exc.strerror}"))
        except PhoneActionsError as exc:
            parsed.append((path.name, plain(str(exc))))

    async def deliver_all(pipeline: Pipeline) -> list[tuple[str, DeliveryReport | str]]:
        results: list[tuple[str, DeliveryReport | str]] = []
        for name, item in parsed:
            results.append((name, item if isinstance(item, str) else await pipeline.deliver(item)))
        return results

    results = run(deliver_all)
    if as_json:
        for name, outcome in results:
            if isinstance(outcome, str):
                _print_json({"event": name, "error": outcome})
            else:
                _print_json({"event": name, "report": outcome.model_dump(mode="json")})
    else:
        from rich.console import Console

        from runtime.console import reports_table

        Console().print(reports_table(results))
    if any(isinstance(o, str) or o.status not in SUCCESS for _, o in results):
        raise typer.Exit(EXIT_NOT_DELIVERED)


# -- recordings against an action or a provider -------------------------------------------


def read_recording(path: Path) -> Recording:
    """``path`` as a recording, or exit 2 saying which of three things is wrong: no such file,
    a file that is not a recording (no header line), or a recording that does not validate."""
    from runtime.errors import PhoneActionsError
    from runtime.recording.format import FORMAT, Recording, is_recording

    if not path.exists():
        raise bad_input(f"{path}: no such file")
    if path.is_dir():
        raise bad_input(f"{path}: is a folder, not a recording")
    if not is_recording(path):
        raise bad_input(
            f"{path}: not a recording: its first line is not a recording header "
            f'({{"format": "{FORMAT}", ...}}, as the recorder writes it)'
        )
    try:
        return Recording.read(path)
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None


def replay_recordings_command(
    paths: list[Path],
    *,
    action: Path | None,
    provider: str | None,
    ignore: list[str],
    as_json: bool,
    jobs: int = 1,
) -> None:
    """Replay each recording, print its table (or JSON Lines); exit 1 when an attempt differs
    or a recording had nothing for this target (a replay that compared nothing proves
    nothing)."""
    if (action is None) == (provider is None):
        raise bad_input("replaying a recording needs exactly one of --action or --provider")
    recordings = [read_recording(path) for path in paths]
    source: bytes | None = None
    if action is not None:
        try:
            source = action.read_bytes()
        except OSError as exc:
            raise bad_input(f"--action {action}: {exc.strerror}") from None
    settings = settings_or_exit()
    chosen = _provider(provider, settings) if provider is not None else None
    target = f"{action}" if action is not None else f"provider {provider}"
    reports = _replay_all(
        recordings,
        action=action,
        source=source,
        provider=chosen,
        ignore=ignore,
        settings=settings,
        jobs=jobs,
        progress=not as_json,
    )
    empty = [report for report in reports if not report.results]
    for report in reports:
        if as_json:
            _print_json_report(report)
        else:
            _print_report(report, target=target)
    if empty and as_json:  # the JSON summaries on stdout; the table's line says it otherwise
        from rich.markup import escape

        from runtime.console import error_console

        for report in empty:
            error_console().print(f"error: {escape(_nothing_compared(report, target))}")
    if empty or not all(report.ok for report in reports):
        raise typer.Exit(EXIT_DIFFERENT)


def _provider(name: str, settings: Any) -> Provider:
    from runtime.errors import PhoneActionsError
    from runtime.plugins import collect_providers, get_plugin_manager

    try:
        return collect_providers(get_plugin_manager(settings=settings), settings).get(name)
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None


def _replay_all(
    recordings: list[Recording],
    *,
    action: Path | None,
    source: bytes | None,
    provider: Provider | None,
    ignore: list[str],
    settings: Any,
    jobs: int,
    progress: bool,
) -> list[ReplayReport]:
    """Every recording, one after the other, in one event loop (one progress bar in all)."""
    import asyncio

    from runtime.recording.replay import replay_recording

    async def main(advance: Callable[[int], None] | None = None) -> list[ReplayReport]:
        try:
            return [
                await replay_recording(
                    recording,
                    action=action,
                    action_source=source,
                    provider=provider,
                    ignore_fields=ignore,
                    limits=settings.sandbox_limits(),
                    progress=advance,
                    attempt_timeout=settings.attempt_timeout,
                    concurrency=jobs,
                )
                for recording in recordings
            ]
        finally:
            if provider is not None:
                await provider.aclose()

    total = sum(len(recording) for recording in recordings)
    if not progress or total <= PROGRESS_THRESHOLD:
        return asyncio.run(main())
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("replay", total=total)
        return asyncio.run(main(lambda n: bar.advance(task, n)))


def _print_json_report(report: ReplayReport) -> None:
    for result in report.results:
        _print_json({"recording": report.source, **result.as_json()})
    summary = {
        "recording": report.source,
        "replayed": len(report.results),
        "different": len(report.changed),
        "skipped": report.skipped,
    }
    _print_json({"summary": summary})


def _print_report(report: ReplayReport, *, target: str) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"replay of {report.source} against {target}", title_justify="left")
    table.add_column("event", overflow="fold")  # "#3 sms +4479...": the number is the point
    table.add_column("recorded outcome", overflow="fold")
    table.add_column("new outcome", overflow="fold")
    table.add_column("differences", overflow="fold")
    for result in report.results:
        style = "green" if result.equal else "red"
        table.add_row(
            escape(result.label),
            escape(result.recorded),
            f"[{style}]{escape(result.replayed)}[/{style}]",
            escape("\n".join(result.differences)) if result.differences else "[green]equal[/green]",
        )
    if report.results:
        console.print(table)
    if not report.results:
        console.print(f"[red]{escape(_nothing_compared(report, target))}[/red]")
        return
    console.print(_verdict(report, target))


def _nothing_compared(report: ReplayReport, target: str) -> str:
    """``nothing compared in FILE: none of its 4 attempts is for provider vonage``."""
    if report.skipped == 1:
        why = f"its one attempt is not for {target}"
    elif report.skipped:
        why = f"none of its {report.skipped} attempts is for {target}"
    else:
        why = "it holds no attempt"
    return f"nothing compared in {report.source}: {why}"


def _verdict(report: ReplayReport, target: str) -> str:
    """``1 of 4 events differ``, ``all 4 events equal``, ``the 1 event is equal`` (Rich
    markup), and how many attempts were for another target."""
    from rich.markup import escape

    from runtime.wording import count

    replayed, changed = len(report.results), len(report.changed)
    events = count(replayed, "event")
    if replayed == 1:
        said = f"the {events} differs" if changed else f"the {events} is equal"
    else:
        said = f"{changed} of {events} differ" if changed else f"all {events} equal"
    style = "red" if changed else "green"
    skipped = (
        f", {count(report.skipped, 'attempt')} skipped (not for {escape(target)})"
        if report.skipped
        else ""
    )
    return f"[{style}]{said}[/{style}]{skipped}"
