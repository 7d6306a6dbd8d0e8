"""The sandbox command of the CLI: ``test-action`` (run scripts on an event).

Kept apart from :mod:`runtime.cli` so that the delivery commands never import the sandbox.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from runtime.console import bad_input, settings_or_exit

__all__ = ["run_test_action"]

_NAME_RULE = "NAME of letters, digits and _, not starting with a digit, at most 128"
"""What the secret-name pattern (``runtime.sandbox.host.runner.SECRET_NAME``) asks, in words."""


class TriggerOption(StrEnum):
    send_phone_message = "send-phone-message"
    custom_phone_provider = "custom-phone-provider"


def _event_for(path: Path, trigger: TriggerOption | None) -> tuple[str, dict[str, Any]]:
    """The event file as the trigger's event (converted when ``--trigger`` asks for the other)."""
    from runtime.errors import PhoneActionsError
    from runtime.events import CustomPhoneProviderEvent, SendPhoneMessageEvent, parse_event

    try:
        event = parse_event(path.read_bytes())
    except OSError as exc:
        raise bad_input(f"{path}: {exc.strerror}") from None
    except PhoneActionsError as exc:
        raise bad_input(f"{path}: {exc}") from None
    chosen = trigger.value if trigger else event.trigger
    try:
        if chosen == "custom-phone-provider" and isinstance(event, SendPhoneMessageEvent):
            event = event.to_custom_phone_provider()
        elif chosen == "send-phone-message" and isinstance(event, CustomPhoneProviderEvent):
            event = event.to_send_phone_message()
    except PhoneActionsError as exc:
        raise bad_input(f"{path}: {exc}") from None
    return chosen, event.model_dump(mode="json", by_alias=True, exclude_none=True)


def _secret_name_ok(name: str) -> bool:
    """The sandbox's one rule for a secret's name, the Management API's and a tenants file's."""
    from runtime.sandbox.host.runner import SECRET_NAME

    return SECRET_NAME.fullmatch(name) is not None


_VISIBLE = (
    "warning: --secret puts the value on the command line, where other local users can read it "
    "(ps, /proc/PID/cmdline); prefer --secret-file or --secret-env"
)


def _secret_file(path: Path) -> dict[str, str]:
    """``NAME=VALUE`` lines (dotenv syntax: quotes, ``export``, comments); a bad line is named."""
    from dotenv.parser import parse_stream

    secrets: dict[str, str] = {}
    try:
        with path.open(encoding="utf-8") as stream:
            bindings = list(parse_stream(stream))
    except OSError as exc:
        raise bad_input(f"--secret-file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise bad_input(f"--secret-file {path}: not UTF-8 text") from None
    for binding in bindings:
        line = binding.original.line
        if binding.key is None and not binding.error:
            continue  # a blank line or a comment
        if binding.error or binding.value is None or not _secret_name_ok(binding.key or ""):
            raise bad_input(f"--secret-file {path}, line {line}: expected NAME=VALUE, {_NAME_RULE}")
        secrets[binding.key] = binding.value  # type: ignore[index]
    return secrets


def _secret_env(names: list[str]) -> dict[str, str]:
    secrets = {}
    for name in names:
        if not _secret_name_ok(name):
            raise bad_input(f"--secret-env {name!r}: expected a {_NAME_RULE}")
        if name not in os.environ:
            raise bad_input(f"--secret-env {name}: environment variable {name} is not set")
        secrets[name] = os.environ[name]
    return secrets


def _secrets(pairs: list[str]) -> dict[str, str]:
    if pairs:
        typer.echo(_VISIBLE, err=True)
    secrets = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not _secret_name_ok(name):
            raise bad_input(f"--secret {name!r}: expected NAME=VALUE, {_NAME_RULE}")
        secrets[name] = value
    return secrets


def run_test_action(
    scripts: Annotated[list[Path], typer.Argument(metavar="SCRIPT", help="Action scripts to run.")],
    event: Annotated[Path, typer.Option(metavar="FILE", help="Event JSON of either trigger.")],
    trigger: Annotated[
        TriggerOption | None,
        typer.Option(help="Trigger to run; default: the event's own (converted if needed)."),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            metavar="HOST[:PORT]", help="A host the action may call over http (a local fake)."
        ),
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME=VALUE",
            help="A secret the action can read; visible to other local users "
            "in the process list: prefer --secret-file or --secret-env.",
        ),
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="File of NAME=VALUE lines (dotenv syntax), the action's secrets."
        ),
    ] = None,
    secret_env: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME", help="The secret NAME is the value of environment variable NAME."
        ),
    ] = None,
    tenant: Annotated[
        str, typer.Option(metavar="ID", help="Tenant id the action runs as.")
    ] = "test",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per script.")] = False,
) -> None:
    """Run action scripts through the real sandbox on one event, as a tenant would upload them."""
    import asyncio

    from runtime.sandbox.host.egress import EgressPolicy
    from runtime.sandbox.host.runner import SandboxRunner
    from runtime.sandbox.shared.oslayers import isolation_from_settings
    from runtime.settings import HOST_ENTRY_FORMS, host_entry_problem

    chosen, payload = _event_for(event, trigger)
    values = _secret_file(secret_file) if secret_file is not None else {}
    values |= _secret_env(secret_env or [])
    values |= _secrets(secret or [])
    settings = settings_or_exit()
    for entry in allow_host or []:  # the rule of PHONE_ACTIONS_SANDBOX_ALLOW_HTTP_HOSTS
        problem = host_entry_problem(entry)
        if problem:
            raise bad_input(f"--allow-host {entry!r}: {problem} ({HOST_ENTRY_FORMS})")
    policy = EgressPolicy(allow_http_hosts=frozenset(allow_host or []))
    sources: list[tuple[Path, bytes]] = []
    for script in scripts:
        try:
            sources.append((script, script.read_bytes()))
        except OSError as exc:
            raise bad_input(f"{script}: {exc.strerror}") from None

    async def run_all() -> list[dict[str, Any]]:
        limits = settings.sandbox_limits()
        rows = []
        async with SandboxRunner(
            limits=limits,
            policy=policy,
            max_workers=4,
            isolation=isolation_from_settings(settings),  # the operator's OS layers, as serve's
        ) as runner:
            for path, source in sources:
                result = await runner.run(
                    tenant=tenant,
                    name=path.stem,
                    source=source,
                    trigger=chosen,  # type: ignore[arg-type]
                    event=payload,
                    secrets=values,
                )
                error = result.error
                if result.compile_errors:
                    error = "; ".join(
                        (f"line {i.line}, column {i.column}: " if i.line else "") + i.message
                        for i in result.compile_errors
                    )
                rows.append(
                    {
                        "script": str(path),
                        "outcome": result.outcome,
                        "error": error,
                        "result": result.result,
                        "logs": result.logs,
                        "http": [call.model_dump() for call in result.http],
                        "handed_off": result.handed_off,
                        "duration_ms": round(result.duration_ms, 3),
                        "traceback": result.traceback,
                    }
                )
        return rows

    rows = asyncio.run(run_all())
    if as_json:
        for row in rows:
            row.pop("traceback")
            typer.echo(json.dumps(row, separators=(",", ":"), default=str))
    else:
        _print_rows(rows)
    if any(row["outcome"] != "ok" for row in rows):
        raise typer.Exit(1)


def _print_rows(rows: list[dict[str, Any]]) -> None:
    """Each script's outcome; tenant text is shown with control characters escaped (``\\x1b``,
    ``\\n``), so an action cannot clear the screen, retitle the terminal or forge a line."""
    from rich.console import Console
    from rich.markup import escape

    from runtime.masking import escape_controls

    console = Console(highlight=False)

    def shown(text: object) -> str:
        return escape(escape_controls(str(text)))

    for row in rows:
        style = "green" if row["outcome"] == "ok" else "red"
        console.print(
            f"[bold]{shown(row['script'])}[/bold]: [{style}]{row['outcome']}[/{style}]"
            f" in {row['duration_ms']:.1f} ms, handed off: {row['handed_off']}"
        )
        if row["error"]:
            console.print(f"  error: {shown(row['error'])}")
        for line in row["traceback"]:
            console.print(f"  {shown(line)}")
        for call in row["http"]:
            console.print(
                f"  http {shown(call['method'])} {shown(call['url'])} -> {call['status']}"
                f" ({call['duration_ms']:.1f} ms)"
            )
        for line in row["logs"]:
            console.print(f"  log: {shown(line)}")
        if row["outcome"] == "ok":
            # ensure_ascii: every control character in the data prints as a \\u escape
            console.print(f"  result: {shown(json.dumps(row['result'], ensure_ascii=True))}")
