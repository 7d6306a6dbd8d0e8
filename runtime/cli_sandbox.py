"""The sandbox commands of the CLI: ``test-action`` (run scripts on an event) and ``doctor``.

Kept apart from :mod:`runtime.cli` so that the delivery commands never import the sandbox.
"""

from __future__ import annotations

import json
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from runtime.console import bad_input, settings_or_exit

if TYPE_CHECKING:
    from runtime.settings import Settings

__all__ = ["doctor", "run_test_action"]

_SECRET = re.compile(r"^([A-Z][A-Z0-9_]{0,63})=(.*)$", re.DOTALL)


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


_SECRET_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
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
        if binding.error or binding.value is None or not _SECRET_NAME.match(binding.key or ""):
            raise bad_input(
                f"--secret-file {path}, line {line}: expected NAME=VALUE, NAME in ALL_CAPS"
            )
        secrets[binding.key] = binding.value  # type: ignore[index]
    return secrets


def _secret_env(names: list[str]) -> dict[str, str]:
    secrets = {}
    for name in names:
        if not _SECRET_NAME.match(name):
            raise bad_input(f"--secret-env {name!r}: expected a NAME in ALL_CAPS")
        if name not in os.environ:
            raise bad_input(f"--secret-env {name}: environment variable {name} is not set")
        secrets[name] = os.environ[name]
    return secrets


def _secrets(pairs: list[str]) -> dict[str, str]:
    if pairs:
        typer.echo(_VISIBLE, err=True)
    secrets = {}
    for pair in pairs:
        match = _SECRET.match(pair)
        if match is None:
            raise bad_input(
                f"--secret {pair.split('=')[0]!r}: expected NAME=VALUE, NAME in ALL_CAPS"
            )
        secrets[match[1]] = match[2]
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

    from runtime.sandbox.egress import EgressPolicy
    from runtime.sandbox.runner import SandboxRunner

    chosen, payload = _event_for(event, trigger)
    values = _secret_file(secret_file) if secret_file is not None else {}
    values |= _secret_env(secret_env or [])
    values |= _secrets(secret or [])
    settings = settings_or_exit()
    try:
        policy = EgressPolicy(allow_http_hosts=frozenset(allow_host or []))
    except ValueError as exc:
        raise bad_input(f"--allow-host: {exc}") from None
    sources: list[tuple[Path, bytes]] = []
    for script in scripts:
        try:
            sources.append((script, script.read_bytes()))
        except OSError as exc:
            raise bad_input(f"{script}: {exc.strerror}") from None

    async def run_all() -> list[dict[str, Any]]:
        limits = settings.sandbox_limits()
        rows = []
        async with SandboxRunner(limits=limits, policy=policy, max_workers=4) as runner:
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


class _NoServices:
    async def handle(self, tenant: str, op: str, params: dict[str, Any], *_: Any, **__: Any) -> Any:
        raise RuntimeError("doctor runs no action")


def _os_layer_checks(settings: Any) -> list[tuple[str, bool | None, str]]:
    """The sandbox's OS layers as a started zygote finds them on this host (``None``: the
    layer is off, which degrades the sandbox but is not an error)."""
    import asyncio
    import logging

    from runtime.sandbox.oslayers import isolation_from_settings
    from runtime.sandbox.supervisor import SandboxPool

    async def started() -> list[tuple[str, bool | None, str]]:
        pool = SandboxPool(
            _NoServices(), spare_workers=0, isolation=isolation_from_settings(settings)
        )
        try:
            await pool.start()
            return [
                (layer.name, True if layer.active else None, layer.detail)
                for layer in pool.layers()
                if layer.name != "seccomp"  # its own row, checked without a zygote
            ]
        finally:
            await pool.aclose()

    quiet = logging.getLogger("runtime.sandbox.supervisor")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the table says it; no warnings above it
    try:
        return asyncio.run(started())
    except Exception as exc:
        return [("sandbox layers", False, f"the sandbox cannot start: {exc}")]
    finally:
        quiet.setLevel(level)


_STATUS = {True: "[green]ok[/green]", None: "[yellow]off[/yellow]", False: "[red]problem[/red]"}
_STATUS_WORD = {True: "ok", None: "off", False: "problem"}


def doctor(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per check: check, status, detail.")
    ] = False,
) -> None:
    """Check this installation: sandbox isolation, plugins, tenants file, data folder."""
    import platform
    from importlib.metadata import version

    from runtime.errors import PhoneActionsError
    from runtime.logs import check_log_path
    from runtime.plugins import collect_providers, get_plugin_manager
    from runtime.sandbox.limits import seccomp_status
    from runtime.tenants import TomlTenantDirectory

    settings = settings_or_exit()
    checks: list[tuple[str, bool | None, str]] = []
    seccomp_ok, seccomp_why = seccomp_status()
    checks.append(("python", True, platform.python_version()))
    checks.append(("RestrictedPython", True, version("RestrictedPython")))
    checks.append(("seccomp", seccomp_ok, seccomp_why))
    checks.extend(_os_layer_checks(settings))
    try:
        pm = get_plugin_manager(settings=settings)
        providers = collect_providers(pm, settings)
        names = ", ".join(p.name for p in providers)
        broken = "; ".join(f"{n}: {e}" for n, e in pm.load_errors.items())
        checks.append(
            ("plugins", not broken, f"providers: {names}" + (f"; {broken}" if broken else ""))
        )
        checks.append(_default_sender_check(providers, settings))
    except PhoneActionsError as exc:
        checks.append(("plugins", False, str(exc)))
    try:
        tenants = TomlTenantDirectory.from_file(settings.tenants_file)
        checks.append(("tenants", True, f"{len(tenants.ids())} in {settings.tenants_file}"))
    except PhoneActionsError as exc:
        checks.append(("tenants", False, str(exc)))
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        probe = settings.data_dir / ".doctor"
        probe.write_text("ok")
        probe.unlink()
        checks.append(("data folder", True, str(settings.data_dir.resolve())))
    except OSError as exc:
        checks.append(("data folder", False, f"{settings.data_dir}: {exc.strerror}"))
    checks.append(("log file", *check_log_path(settings.resolved_log_file)))
    if as_json:
        for name, ok, detail in checks:
            row = {"check": name, "status": _STATUS_WORD[ok], "detail": detail}
            typer.echo(json.dumps(row, separators=(",", ":")))
    else:
        _print_checks(checks)
    if any(ok is False for _, ok, _ in checks):
        raise typer.Exit(1)


def _default_sender_check(providers: Any, settings: Settings) -> tuple[str, bool | None, str]:
    """The default sender resolves; a warning while it is one that reaches no phone."""
    from runtime.delivery.default_sender import DefaultSender
    from runtime.errors import PhoneActionsError

    try:
        sender = DefaultSender.from_settings(providers, settings)
    except PhoneActionsError as exc:
        return ("default sender", False, str(exc))
    if not sender.reaches_phones:
        return (
            "default sender",
            None,
            f"warning: {sender.name} stores messages and sends none to phones; set "
            "PHONE_ACTIONS_DEFAULT_SENDER (and its settings and credentials) to a provider",
        )
    return ("default sender", True, f"{sender.name}, cap {sender.cap} messages per tenant")


def _print_checks(checks: list[tuple[str, bool | None, str]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="phone-actions doctor", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for name, ok, detail in checks:
        table.add_row(name, _STATUS[ok], escape(detail))
    Console(highlight=False).print(table)
