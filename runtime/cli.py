"""The ``phone-actions`` command line (Typer + Rich). Every command is in docs/cli.md.

Exit codes: 0 success (every message delivered), 1 a message was not delivered, 2 bad input
or configuration. Bad input never shows a traceback: it prints what is wrong and where.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runtime.cli_providers import providers_app
from runtime.cli_sandbox import doctor, run_test_action
from runtime.console import (
    RESOURCE_ERRORS,
    SUCCESS,
    bad_input,
    plugins_table,
    report_table,
    reports_table,
    resource_error,
    settings_or_exit,
)
from runtime.delivery import Pipeline
from runtime.errors import PhoneActionsError, UnknownTenantError
from runtime.events import (
    CustomPhoneProviderEvent,
    DeliveryReport,
    PhoneMessageRequest,
    SendPhoneMessageEvent,
    parse_event,
)
from runtime.plugins import collect_providers, get_plugin_manager
from runtime.tenants import TomlTenantDirectory

app = typer.Typer(
    help="Deliver one-time codes by SMS and voice: providers, fallback, records.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
T = TypeVar("T")
EXIT_NOT_DELIVERED = 1

SCHEMAS: dict[str, Any] = {
    "send-phone-message": SendPhoneMessageEvent,
    "custom-phone-provider": CustomPhoneProviderEvent,
    "request": PhoneMessageRequest,
    "report": DeliveryReport,
}


class ChannelOption(StrEnum):
    sms = "sms"
    voice = "voice"


class PurposeOption(StrEnum):
    verification = "verification"
    enrollment = "enrollment"


def _run(make: Callable[[Pipeline], Awaitable[T]]) -> T:
    """Build the pipeline from settings, run ``make`` with it, close it; bad input exits 2."""

    settings = settings_or_exit()

    async def main() -> T:
        async with Pipeline.from_settings(settings) as pipeline:
            pipeline.handle_signals()  # SIGTERM/SIGINT: finish what is in flight, then exit
            # open the database now: a bad URL or an unreachable server is configuration
            await asyncio.to_thread(lambda: pipeline.idempotency)
            return await make(pipeline)

    try:
        return asyncio.run(main())
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None
    except RESOURCE_ERRORS as exc:
        raise bad_input(resource_error(exc, settings)) from None


def _default_country(tenant: str) -> str | None:
    """The tenant's ``default_country`` from the tenants file (None for an unknown tenant,
    which the pipeline then rejects); the file's own errors are configuration errors."""
    settings = settings_or_exit()
    try:
        return TomlTenantDirectory.from_file(settings.tenants_file).get(tenant).default_country
    except UnknownTenantError:
        return None


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, separators=(",", ":"), default=str))


@app.command()
def send(
    tenant: Annotated[str, typer.Option(help="Tenant id from the tenants file.")],
    to: Annotated[
        str,
        typer.Option(
            help="Recipient: +14155552671 or 0044..., or a national number when the tenant "
            "sets default_country."
        ),
    ],
    code: Annotated[str, typer.Option(help="The one-time code (4 to 12 letters or digits).")],
    channel: Annotated[ChannelOption, typer.Option(help="sms or voice.")] = ChannelOption.sms,
    purpose: Annotated[PurposeOption, typer.Option()] = PurposeOption.verification,
    locale: Annotated[str, typer.Option(help="Language of the message (en, fr, pt-BR).")] = "en",
    idempotency_key: Annotated[
        str | None, typer.Option(help="The same key never sends twice; returns the first report.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Send one code through the pipeline and print its report."""
    try:
        request = PhoneMessageRequest.create(
            default_country=_default_country(tenant),
            tenant=tenant,
            recipient=to,
            code=code,
            channel=channel.value,
            purpose=purpose.value,
            locale=locale,
            idempotency_key=idempotency_key,
        )
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None
    report = _run(lambda pipeline: pipeline.deliver(request))
    if as_json:
        _print_json(report.model_dump(mode="json"))
    else:
        Console().print(report_table(report))
    if report.status not in SUCCESS:
        raise typer.Exit(EXIT_NOT_DELIVERED)


@app.command()
def replay(
    events: Annotated[
        list[Path],
        typer.Argument(help="Event files (either trigger's JSON), or one recording (JSON Lines)."),
    ],
    tenant: Annotated[
        str | None, typer.Option(help="Deliver as this tenant instead of the event's tenant.id.")
    ] = None,
    action: Annotated[
        Path | None,
        typer.Option(help="Replay the recording against this action script (in the sandbox)."),
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="Replay the recording against this provider plugin.")
    ] = None,
    ignore_field: Annotated[
        list[str] | None,
        typer.Option(help="A request body field that changes on every run (not compared)."),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            min=1,
            help="Events of a recording replayed at once against an action, each in its own "
            "sandbox worker; faithful only for actions that keep no state between invocations "
            "(a cached token). The report keeps the order.",
        ),
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Feed recorded events through the pipeline, one report each; or replay a recording."""
    from runtime.recording.format import is_recording

    recordings = [path for path in events if is_recording(path)]
    if recordings or action is not None or provider is not None:
        from runtime.cli_replay import replay_recording_command

        if len(events) != 1 or len(recordings) != 1:
            raise bad_input("give exactly one recording (JSON Lines) with --action or --provider")
        replay_recording_command(
            recordings[0],
            action=action,
            provider=provider,
            ignore=ignore_field or [],
            as_json=as_json,
            jobs=jobs,
        )
        return
    parsed: list[tuple[str, PhoneMessageRequest | str]] = []
    for path in events:
        try:
            event = parse_event(path.read_bytes())
            parsed.append((path.name, PhoneMessageRequest.from_event(event, tenant=tenant)))
        except OSError as exc:
            parsed.append((path.name, f"cannot read: {exc.strerror}"))
        except PhoneActionsError as exc:
            parsed.append((path.name, str(exc)))

    async def deliver_all(pipeline: Pipeline) -> list[tuple[str, DeliveryReport | str]]:
        results: list[tuple[str, DeliveryReport | str]] = []
        for name, item in parsed:
            results.append((name, item if isinstance(item, str) else await pipeline.deliver(item)))
        return results

    results = _run(deliver_all)
    if as_json:
        for name, outcome in results:
            if isinstance(outcome, str):
                _print_json({"event": name, "error": outcome})
            else:
                _print_json({"event": name, "report": outcome.model_dump(mode="json")})
    else:
        Console().print(reports_table(results))
    if any(isinstance(o, str) or o.status not in SUCCESS for _, o in results):
        raise typer.Exit(EXIT_NOT_DELIVERED)


@app.command()
def schema(
    name: Annotated[
        str | None, typer.Argument(help=f"One of: {', '.join(SCHEMAS)}. Default: all.")
    ] = None,
) -> None:
    """Print the JSON Schema of each event (or of the one named)."""
    if name is not None and name not in SCHEMAS:
        raise bad_input(f"unknown schema {name!r}; choose one of: {', '.join(SCHEMAS)}")
    chosen = {name: SCHEMAS[name]} if name else SCHEMAS
    documents = {key: model.model_json_schema(by_alias=True) for key, model in chosen.items()}
    typer.echo(json.dumps(documents[name] if name else documents, indent=2))


@app.command()
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List plugins, the hooks each implements and the providers each registers."""
    settings = settings_or_exit()
    try:
        pm = get_plugin_manager(settings=settings)
        registry = collect_providers(pm, settings)
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None
    rows: list[dict[str, Any]] = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        providers = sorted(p.name for p in registry if registry.owner(p.name) == name)
        rows.append({"name": name, "hooks": hooks, "providers": providers, "error": None})
    for name, error in sorted(pm.load_errors.items()):
        rows.append({"name": name, "hooks": [], "providers": [], "error": f"skipped: {error}"})
    if as_json:
        _print_json(rows)
    else:
        Console().print(plugins_table(rows))


@app.command()
def outbox(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's messages.")] = None,
    last: Annotated[int | None, typer.Option(min=1, help="Only the newest N messages.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List the messages the outbox default sender holds (they contain the codes)."""
    from plugins.outbox import OutboxProvider

    settings = settings_or_exit()
    store = OutboxProvider(settings.resolved_database_url, timeout=settings.store_timeout)
    try:
        messages = store.messages(tenant, last)
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None
    if as_json:
        for m in messages:
            _print_json(
                {
                    "id": m.id,
                    "tenant": m.tenant,
                    "recipient": m.recipient,
                    "channel": m.channel,
                    "text": m.text,
                    "created_at": m.created_at,
                }
            )
        return
    table = Table(title=f"outbox ({store.database})", title_justify="left")
    for column in ("time", "tenant", "recipient", "channel", "text"):
        table.add_column(column)
    for m in messages:
        table.add_row(
            m.created_at.isoformat(timespec="seconds"),
            m.tenant,
            m.recipient,
            m.channel,
            escape(m.text),
        )
    Console().print(table)


app.command("test-action")(run_test_action)
app.command("doctor")(doctor)
app.add_typer(providers_app, name="providers")


if __name__ == "__main__":
    app()
