"""Rich rendering of reports, plugins and the outbox for the CLI; JSON output lives beside it.

Rich, SQLAlchemy and the event models are imported inside the functions that use them:
``runtime.cli`` imports this module, and ``phone-actions --help`` must stay fast.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from runtime.events import DeliveryReport
    from runtime.settings import Settings

__all__ = [
    "EXIT_BAD_INPUT",
    "SUCCESS",
    "bad_input",
    "error_console",
    "plugins_table",
    "report_table",
    "reports_table",
    "resource_error",
    "resource_errors",
    "settings_or_exit",
]

EXIT_BAD_INPUT = 2
"""Exit code of every command on bad input or configuration."""

_STATUS_STYLE = {
    "delivered": "green",
    "stored": "cyan",
    "retrying": "magenta",  # not delivered yet: an action asked for a retry (exit 1)
    "rejected": "yellow",
    "failed": "red",
}
SUCCESS = frozenset({"delivered", "stored"})
"""Statuses a command exits 0 for: ``stored`` is the outbox's, which sends nothing, and says so."""


def report_table(report: DeliveryReport, title: str | None = None) -> Table:
    """One report: its verdict, then one row per attempt."""
    from rich.markup import escape
    from rich.table import Table

    style = _STATUS_STYLE[report.status]
    heading = f"[{style}]{report.status}[/{style}] {report.channel} to {report.recipient}"
    if report.delivered_by:
        heading += f" by {report.delivered_by}"
    if report.status == "stored":
        heading += " [bold]not sent to a phone[/bold]"
    if report.replayed:
        heading += " (idempotent replay of an earlier request)"
    table = Table(title=title or heading, title_justify="left", show_lines=False)
    for column in ("#", "provider", "fallback", "outcome", "latency ms"):
        table.add_column(column, no_wrap=True)
    table.add_column("message id / error", overflow="fold")  # an id is folded, never cut
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
    from rich.markup import escape
    from rich.table import Table

    from runtime.wording import plain

    table = Table(title="replay", title_justify="left")
    table.add_column("event", overflow="fold")  # the file name is the point: folded, never cut
    table.add_column("status", no_wrap=True)
    for column in ("path", "delivered by", "reason"):
        table.add_column(column, overflow="fold")
    for name, outcome in rows:
        if isinstance(outcome, str):
            table.add_row(escape(name), "[red]invalid[/red]", "", "", escape(plain(outcome)))
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
    """One row per plugin; names never cut (they are what ``plugins`` is run for)."""
    from rich.table import Table

    table = Table(title="plugins", title_justify="left")
    table.add_column("plugin", no_wrap=True, min_width=len("plugins.custom_action"))
    for column in ("hooks", "providers", "status"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["name"],
            ", ".join(row["hooks"]),
            ", ".join(row["providers"]),
            row.get("error") or "loaded",
        )
    return table


def error_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def bad_input(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr, in the user's words (:func:`runtime.wording.plain`
    rewrites pydantic's); the caller raises the returned exit (code 2)."""
    from rich.markup import escape

    from runtime.wording import plain

    error_console().print(f"[red]error:[/red] {escape(plain(message))}")
    return typer.Exit(EXIT_BAD_INPUT)


def resource_errors() -> tuple[type[BaseException], ...]:
    """What opening the data folder, the log or the database raises when a setting points at
    something unusable: :func:`resource_error` turns each into one line naming the setting."""
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    return (OSError, ImportError, sqlite3.Error, SQLAlchemyError)


_REASONS = {
    errno.EEXIST: "exists and is not a folder",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOENT: "no such file or folder, and it cannot be created there",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
}


def resource_error(exc: BaseException, settings: Settings) -> str:
    """One line for ``exc`` met opening what ``settings`` name: the variable, the path or
    URL (without its password) and why; never a traceback."""
    if isinstance(exc, OSError) and exc.filename is not None:
        path = Path(os.fsdecode(exc.filename))
        reason = _REASONS.get(exc.errno or 0, exc.strerror or type(exc).__name__)
        return f"{_setting_of(path, settings)}: cannot use {str(path)!r}: {reason}"
    if isinstance(exc, OSError):  # a write that failed, e.g. a full disk
        reason = _REASONS.get(exc.errno or 0, exc.strerror or type(exc).__name__)
        return (
            f"cannot write the data folder or the log: {reason} (PHONE_ACTIONS_DATA_DIR, "
            "PHONE_ACTIONS_LOG_FILE)"
        )
    if settings.database_url:
        where = f"PHONE_ACTIONS_DATABASE_URL: {_safe_url(settings.database_url)}"
    else:
        where = f"PHONE_ACTIONS_DATA_DIR: the database in {str(settings.data_dir)!r}"
    return f"{where}: {_database_reason(exc)}"


def _setting_of(path: Path, settings: Settings) -> str:
    """The variable whose value is ``path`` or holds it."""
    owners = [
        ("PHONE_ACTIONS_LOG_FILE", settings.log_file),
        ("PHONE_ACTIONS_RECORDINGS_DIR", settings.recordings_dir),
        ("PHONE_ACTIONS_TENANTS_FILE", settings.tenants_file),
        ("PHONE_ACTIONS_DATA_DIR", settings.data_dir),
    ]
    for name, value in owners:
        if value is not None and (path == value or value in path.parents):
            return name
    if settings.database_url and str(path) in settings.database_url:
        return "PHONE_ACTIONS_DATABASE_URL"
    return "PHONE_ACTIONS_DATA_DIR"


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return repr(make_url(url).render_as_string(hide_password=True))
    except Exception:  # not a URL at all: show nothing of it (it may hold a password)
        return "(not a URL)"


def _database_reason(exc: BaseException) -> str:
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    if isinstance(exc, NoSuchModuleError):
        return "unknown database dialect or driver (e.g. postgresql+psycopg://user@host/db)"
    if isinstance(exc, ArgumentError):
        return "not a database URL (dialect+driver://user@host/db)"
    if isinstance(exc, ImportError):
        return f"the database driver is not installed ({exc.name or exc})"
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        first = str(exc.orig).strip().splitlines()
        return f"cannot connect: {first[0] if first else type(exc.orig).__name__}"
    first = str(exc).strip().splitlines()
    return f"cannot open the database: {first[0] if first else type(exc).__name__}"


def settings_or_exit() -> Settings:
    """The settings, or exit 2 naming the bad variable."""
    from runtime.errors import PhoneActionsError
    from runtime.settings import load_settings

    try:
        return load_settings()
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None
