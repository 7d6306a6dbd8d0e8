"""The ``phone-actions`` command line (Typer + Rich). Every command is in docs/cli.md.

Exit codes: 0 success (every message delivered), 1 a message was not delivered, 2 bad input
or configuration. Bad input never shows a traceback: it prints what is wrong and where.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from runtime.cli_actions import actions_app
from runtime.cli_doctor import doctor
from runtime.cli_plugins import PluginCommands
from runtime.cli_providers import providers_app
from runtime.cli_sandbox import run_test_action
from runtime.cli_service import serve, token_app
from runtime.cli_tenants import tenants_app
from runtime.console import SUCCESS, bad_input, settings_or_exit

if TYPE_CHECKING:
    from runtime.delivery import Pipeline
    from runtime.events import DeliveryReport, PhoneMessageRequest

app = typer.Typer(
    cls=PluginCommands,  # a command it does not know is looked for among the plugins' ones
    help="Deliver one-time codes by SMS and voice: providers, fallback, records.",
    epilog="Plugins add commands of their own (the built-in ones: outbox, providers "
    "plivo-answers); naming one loads the plugins.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags shown as flags, and no Rich import for --help
)
T = TypeVar("T")
EXIT_NOT_DELIVERED = 1

SCHEMA_NAMES = ("send-phone-message", "custom-phone-provider", "request", "report")
"""What ``phone-actions schema NAME`` accepts."""


def _schemas() -> dict[str, Any]:
    from runtime.events import (
        CustomPhoneProviderEvent,
        DeliveryReport,
        PhoneMessageRequest,
        SendPhoneMessageEvent,
    )

    models = (SendPhoneMessageEvent, CustomPhoneProviderEvent, PhoneMessageRequest, DeliveryReport)
    return dict(zip(SCHEMA_NAMES, models, strict=True))


def __getattr__(name: str) -> Any:
    """``SCHEMAS`` (name -> model), built on first use: the models import pydantic."""
    if name == "SCHEMAS":
        return _schemas()
    raise AttributeError(f"module 'runtime.cli' has no attribute {name!r}")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"phone-actions {version('phone-actions')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Deliver one-time codes by SMS and voice: providers, fallback, records."""


class ChannelOption(StrEnum):
    sms = "sms"
    voice = "voice"


class PurposeOption(StrEnum):
    verification = "verification"
    enrollment = "enrollment"


def _run(make: Callable[[Pipeline], Awaitable[T]]) -> T:
    """Build the pipeline from settings, run ``make`` with it, close it; bad input exits 2."""

    import asyncio

    from runtime.console import resource_error, resource_errors
    from runtime.delivery import Pipeline
    from runtime.errors import PhoneActionsError

    settings = settings_or_exit()

    async def main() -> T:
        async with Pipeline.from_settings(settings) as pipeline:
            pipeline.handle_signals()  # SIGTERM/SIGINT: finish what is in flight, then exit
            # open the database now: a bad URL or an unreachable server is configuration
            await pipeline.open_store()
            return await make(pipeline)

    try:
        return asyncio.run(main())
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None
    except resource_errors() as exc:
        raise bad_input(resource_error(exc, settings)) from None


async def _deliver_checked(pipeline: Pipeline, request: PhoneMessageRequest) -> DeliveryReport:
    """``pipeline.deliver``, after checking that the tenant's ``provider`` is registered: a
    misspelt name in the tenants file is configuration (exit 2, naming the field), not a
    failed delivery."""
    from runtime.tenants import TomlTenantDirectory, check_providers

    directory = pipeline.tenants
    if isinstance(directory, TomlTenantDirectory):
        registered = [provider.name for provider in pipeline.providers]
        check_providers(directory, registered, only=request.tenant)
    return await pipeline.deliver(request)


def _default_country(tenant: str) -> str | None:
    """The tenant's ``default_country`` from the tenants file (None for an unknown tenant,
    which the pipeline then rejects); the file's own errors are configuration errors."""
    from runtime.errors import UnknownTenantError
    from runtime.tenants import TomlTenantDirectory

    settings = settings_or_exit()
    try:
        return TomlTenantDirectory.from_file(settings.tenants_file).get(tenant).default_country
    except UnknownTenantError:
        return None


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, separators=(",", ":"), default=str))


@app.command(short_help="Send one code through the pipeline and print its report.")
def send(
    tenant: Annotated[str, typer.Option(metavar="ID", help="Tenant id from the tenants file.")],
    to: Annotated[
        str,
        typer.Option(
            metavar="NUMBER",
            help="Recipient: +14155552671 or 0044..., or a national number when the tenant "
            "sets default_country.",
        ),
    ],
    code: Annotated[
        str, typer.Option(metavar="CODE", help="The one-time code (4 to 12 letters or digits).")
    ],
    channel: Annotated[ChannelOption, typer.Option(help="sms or voice.")] = ChannelOption.sms,
    purpose: Annotated[PurposeOption, typer.Option()] = PurposeOption.verification,
    locale: Annotated[
        str, typer.Option(metavar="LOCALE", help="Language of the message (en, fr, pt-BR).")
    ] = "en",
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            metavar="KEY",
            help="The same key never sends twice (for idempotency_retention_days); returns "
            "the first report.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Send one code through the pipeline and print its report."""
    from runtime.errors import PhoneActionsError
    from runtime.events import PhoneMessageRequest

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
    report = _run(lambda pipeline: _deliver_checked(pipeline, request))
    if as_json:
        _print_json(report.model_dump(mode="json"))
    else:
        from rich.console import Console

        from runtime.console import report_table

        Console().print(report_table(report))
    if report.status not in SUCCESS:
        raise typer.Exit(EXIT_NOT_DELIVERED)


@app.command(short_help="Deliver recorded events again, or check recordings still match.")
def replay(
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE",
            help="Event files (either trigger's JSON), or recordings (JSON Lines) with "
            "--action or --provider.",
        ),
    ],
    tenant: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Deliver as this tenant instead of the event's tenant.id."),
    ] = None,
    action: Annotated[
        Path | None,
        typer.Option(
            metavar="SCRIPT", help="Replay the recordings against this action (in the sandbox)."
        ),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Replay the recordings against this provider plugin."),
    ] = None,
    ignore_field: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME", help="A request body field that changes on every run (not compared)."
        ),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="Events of a recording replayed at once against an action, each in its own "
            "sandbox worker; faithful only for actions that keep no state between invocations "
            "(a cached token). The report keeps the order.",
        ),
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Deliver recorded events again, or compare recordings against an action or provider."""
    from runtime.cli_replay import replay_events_command, replay_recordings_command

    if action is not None or provider is not None:
        replay_recordings_command(
            files,
            action=action,
            provider=provider,
            ignore=ignore_field or [],
            as_json=as_json,
            jobs=jobs,
        )
    else:
        replay_events_command(files, tenant=tenant, as_json=as_json, run=_run)


@app.command(short_help="Print the JSON Schema of each event (or of the one named).")
def schema(
    name: Annotated[
        str | None,
        typer.Argument(metavar="NAME", help=f"One of: {', '.join(SCHEMA_NAMES)}. Default: all."),
    ] = None,
) -> None:
    """Print the JSON Schema of each event (or of the one named)."""
    if name is not None and name not in SCHEMA_NAMES:
        raise bad_input(f"unknown schema {name!r}; choose one of: {', '.join(SCHEMA_NAMES)}")
    schemas = _schemas()
    chosen = {name: schemas[name]} if name else schemas
    documents = {key: model.model_json_schema(by_alias=True) for key, model in chosen.items()}
    typer.echo(json.dumps(documents[name] if name else documents, indent=2))


@app.command(short_help="List plugins with the hooks and providers of each.")
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List plugins, the hooks each implements and the providers each registers."""
    from runtime.errors import PhoneActionsError
    from runtime.plugins import collect_providers, get_plugin_manager

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
        from rich.console import Console

        from runtime.console import plugins_table

        Console().print(plugins_table(rows))


app.command("test-action", short_help="Run action scripts in the sandbox on one event.")(
    run_test_action
)
app.command("doctor", short_help="Check sandbox isolation, plugins, tenants file, data folder.")(
    doctor
)
app.add_typer(
    providers_app,
    name="providers",
    short_help="List providers, or send one test message through one.",
)
app.command("serve", short_help="Serve the Management API until interrupted.")(serve)
app.add_typer(
    token_app,
    name="token",
    short_help="Print a Management API token for one tenant.",
)
app.add_typer(
    tenants_app,
    name="tenants",
    short_help="Tenants in the database: import a tenants file, create one.",
)
app.add_typer(
    actions_app,
    name="actions",
    short_help="Actions through the API: create, deploy, roll back, test.",
)


if __name__ == "__main__":
    app()
