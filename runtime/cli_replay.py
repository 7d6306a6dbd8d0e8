"""``phone-actions replay RECORDING --action SCRIPT | --provider NAME``: replay a recording.

Kept apart from :mod:`runtime.cli` so that plain event replays never import the sandbox.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from runtime.console import bad_input, settings_or_exit
from runtime.errors import PhoneActionsError
from runtime.recording.format import Recording
from runtime.recording.replay import ReplayReport, replay_recording

__all__ = ["EXIT_DIFFERENT", "PROGRESS_THRESHOLD", "replay_recording_command"]

PROGRESS_THRESHOLD = 50
"""Recordings with more attempts than this show a progress bar (not with --json)."""
EXIT_DIFFERENT = 1


def replay_recording_command(
    path: Path,
    *,
    action: Path | None,
    provider: str | None,
    ignore: list[str],
    as_json: bool,
    jobs: int = 1,
) -> None:
    """Replay ``path``, print the table (or JSON Lines), exit 1 on any difference."""
    if (action is None) == (provider is None):
        raise bad_input("replaying a recording needs exactly one of --action or --provider")
    try:
        recording = Recording.read(path)
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None
    source: bytes | None = None
    if action is not None:
        try:
            source = action.read_bytes()
        except OSError as exc:
            raise bad_input(f"{action}: {exc.strerror}") from None
    settings = settings_or_exit()
    chosen = None
    if provider is not None:
        from runtime.plugins import collect_providers, get_plugin_manager

        try:
            registry = collect_providers(get_plugin_manager(settings=settings), settings)
            chosen = registry.get(provider)
        except PhoneActionsError as exc:
            raise bad_input(str(exc)) from None

    async def main(advance: Callable[[int], None] | None = None) -> ReplayReport:
        try:
            return await replay_recording(
                recording,
                action=action,
                action_source=source,
                provider=chosen,
                ignore_fields=ignore,
                limits=settings.sandbox_limits(),
                progress=advance,
                attempt_timeout=settings.attempt_timeout,
                concurrency=jobs,
            )
        finally:
            if chosen is not None:
                await chosen.aclose()

    if as_json or len(recording) <= PROGRESS_THRESHOLD:
        report = asyncio.run(main())
    else:
        columns = (
            TextColumn("replaying"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("replay", total=len(recording))
            report = asyncio.run(main(lambda n: bar.advance(task, n)))
    if as_json:
        for result in report.results:
            typer.echo(json.dumps(result.as_json(), separators=(",", ":")))
        summary = {
            "recording": str(path),
            "replayed": len(report.results),
            "different": len(report.changed),
            "skipped": report.skipped,
        }
        typer.echo(json.dumps({"summary": summary}, separators=(",", ":")))
    else:
        _print_report(report, target=str(action) if action else f"provider {provider}")
    if not report.ok:
        raise typer.Exit(EXIT_DIFFERENT)


def _print_report(report: ReplayReport, *, target: str) -> None:
    console = Console(highlight=False)
    table = Table(title=f"replay of {report.source} against {target}", title_justify="left")
    for column in ("event", "recorded outcome", "new outcome", "differences"):
        table.add_column(column)
    for result in report.results:
        style = "green" if result.equal else "red"
        table.add_row(
            escape(result.label),
            escape(result.recorded),
            f"[{style}]{escape(result.replayed)}[/{style}]",
            escape("\n".join(result.differences)) if result.differences else "[green]equal[/green]",
        )
    console.print(table)
    changed = len(report.changed)
    skipped = f", {report.skipped} skipped (not for this target)" if report.skipped else ""
    if changed:
        console.print(f"[red]{changed} of {len(report.results)} events differ[/red]{skipped}")
    else:
        console.print(f"[green]all {len(report.results)} events equal[/green]{skipped}")
