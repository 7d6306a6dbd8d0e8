"""Rich rendering of reports, plugins and the outbox for the CLI; JSON output lives beside it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runtime.errors import PhoneActionsError
from runtime.events import DeliveryReport
from runtime.settings import Settings, load_settings

__all__ = [
    "bad_input",
    "error_console",
    "plugins_table",
    "report_table",
    "reports_table",
    "settings_or_exit",
]

EXIT_BAD_INPUT = 2
"""Exit code of every command on bad input or configuration."""

_STATUS_STYLE = {"delivered": "green", "rejected": "yellow", "failed": "red"}


def report_table(report: DeliveryReport, title: str | None = None) -> Table:
    """One report: its verdict, then one row per attempt."""
    style = _STATUS_STYLE[report.status]
    heading = f"[{style}]{report.status}[/{style}] {report.channel} to {report.recipient}"
    if report.delivered_by:
        heading += f" by {report.delivered_by}"
    if report.replayed:
        heading += " (idempotent replay of an earlier request)"
    table = Table(title=title or heading, title_justify="left", show_lines=False)
    for column in ("#", "provider", "fallback", "outcome", "latency ms", "message id / error"):
        table.add_column(column)
    for number, attempt in enumerate(report.attempts, 1):
        result = escape(attempt.message_id or f"[{attempt.error_code}] {attempt.error}")
        table.add_row(
            str(number),
            attempt.provider,
            "yes" if attempt.fallback else "no",
            attempt.outcome,
            f"{attempt.latency_ms:.1f}",
            result,
        )
    if title is not None:
        table.caption = heading
    if report.reason:
        reason = escape(f"reason: {report.reason}: {report.detail}")
        table.caption = f"{table.caption}\n{reason}" if table.caption else reason
    table.caption_justify = "left"
    return table


def reports_table(rows: Iterable[tuple[str, DeliveryReport | str]]) -> Table:
    """One line per replayed event: the file, then its report or its error."""
    table = Table(title="replay", title_justify="left")
    for column in ("event", "status", "path", "delivered by", "reason"):
        table.add_column(column)
    for name, outcome in rows:
        if isinstance(outcome, str):
            table.add_row(escape(name), "[red]invalid[/red]", "", "", escape(outcome))
            continue
        style = _STATUS_STYLE[outcome.status]
        reason = f"{outcome.reason}: {outcome.detail}" if outcome.reason else ""
        table.add_row(
            name,
            f"[{style}]{outcome.status}[/{style}]",
            " → ".join(outcome.path),
            outcome.delivered_by or "",
            reason,
        )
    return table


def plugins_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="plugins", title_justify="left")
    for column in ("plugin", "hooks", "providers", "status"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            ", ".join(row["hooks"]),
            ", ".join(row["providers"]),
            row.get("error") or "loaded",
        )
    return table


def error_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def bad_input(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; the caller raises the returned exit (code 2)."""
    error_console().print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(EXIT_BAD_INPUT)


def settings_or_exit() -> Settings:
    """The settings, or exit 2 naming the bad variable."""
    try:
        return load_settings()
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None
