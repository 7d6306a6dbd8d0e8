"""``phone-actions providers``: what each provider needs, and ``providers try`` to test one.

``providers try`` sends one real test message through one provider, outside any tenant: the
settings come from ``--set`` and the credentials from environment variables named
``<PROVIDER>_<CREDENTIAL>`` (``MITTO_API_KEY``, ``TWILIO_AUTH_TOKEN``), so that no secret is
ever typed on a command line (where shell history and ``ps`` would keep it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from runtime.cli_plugins import PluginCommands
from runtime.console import bad_input, settings_or_exit

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from runtime.providers import PhoneMessage, Provider, ProviderRegistry

__all__ = ["credential_variable", "providers_app"]

EXIT_NOT_DELIVERED = 1

providers_app = typer.Typer(
    cls=PluginCommands,  # plugins add subcommands (plugins.plivo: plivo-answers)
    help="List the registered providers, or send one test message through one.",
    no_args_is_help=False,
    invoke_without_command=True,
)


def credential_variable(provider: str, field: str) -> str:
    """The environment variable ``providers try`` reads a credential from."""
    return f"{provider}_{field}".upper().replace("-", "_")


_WHERE = "in the environment or in .env"
"""Where ``providers try`` reads the credential variables from (runtime/env_file.py)."""


def _as_variables(provider: Provider[BaseModel, BaseModel], text: str) -> str | None:
    """``text`` with each credential field it names (``api_key``) replaced by the variable to
    set (``VONAGE_API_KEY``), and where to set it; None when it names no credential field.

    A provider words its errors for a tenants file, whose ``credentials_env`` maps each field to
    a variable; here the variables are fixed, and the user needs their names."""
    import re

    fields = sorted(provider.credentials_model.model_fields, key=len, reverse=True)
    if not fields:
        return None
    named = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, fields)) + r")(?![\w-])")
    if not named.search(text):
        return None
    swapped = named.sub(lambda m: credential_variable(provider.name, m.group(1)), text)
    return f"{swapped} (variables read from the environment or from .env)"


def _registry() -> ProviderRegistry:
    from runtime.errors import PhoneActionsError
    from runtime.plugins import collect_providers, get_plugin_manager

    settings = settings_or_exit()
    try:
        return collect_providers(get_plugin_manager(settings=settings), settings)
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None


def _fields(model: type[BaseModel]) -> list[dict[str, Any]]:
    return [
        {"name": name, "required": info.is_required(), "description": info.description or ""}
        for name, info in model.model_fields.items()
    ]


def _describe(provider: Provider, owner: str) -> dict[str, Any]:
    return {
        "name": provider.name,
        "plugin": owner,
        "channels": sorted(provider.channels),
        "settings": _fields(provider.config_model),
        "credentials": _fields(provider.credentials_model),
    }


def _names(fields: list[dict[str, Any]]) -> str:
    """``from_number*, base_url``: required fields starred."""
    return ", ".join(f["name"] + ("*" if f["required"] else "") for f in fields) or "-"


@providers_app.callback()
def providers(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every registered provider: channels, settings and credentials (* = required)."""
    if ctx.invoked_subcommand is not None:
        return
    registry = _registry()
    rows = [_describe(p, registry.owner(p.name)) for p in registry]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="providers (* = required)", title_justify="left", show_lines=True)
    for column in ("name", "plugin", "channels", "settings", "credentials"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["name"],
            row["plugin"],
            ", ".join(row["channels"]),
            _names(row["settings"]),
            _names(row["credentials"]),
        )
    Console().print(table)


def _parse_sets(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a value that parses as JSON (``2``, ``true``, ``["a"]``) is used
    as such, anything else as a string."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise bad_input(f"--set {pair!r}: expected KEY=VALUE")
        try:
            values[key.strip()] = json.loads(raw)
        except ValueError:
            values[key.strip()] = raw
    return values


def _validation_problem(exc: ValidationError) -> str:
    """Field names and messages only, in the user's words: a value may be a secret."""
    from runtime.wording import problems

    return problems(exc.errors(include_input=False, include_url=False))


def _credentials(
    provider: Provider[BaseModel, BaseModel], environ: Mapping[str, str] | None = None
) -> BaseModel:
    """The provider's credentials from ``<PROVIDER>_<CREDENTIAL>`` variables: the process
    environment, then the ``.env`` file settings read."""
    from pydantic import ValidationError

    from runtime.env_file import credentials_environ

    environ = credentials_environ() if environ is None else environ
    fields = provider.credentials_model.model_fields
    raw = {
        name: environ[credential_variable(provider.name, name)]
        for name in fields
        if credential_variable(provider.name, name) in environ
    }
    missing = [
        credential_variable(provider.name, name)
        for name, info in fields.items()
        if info.is_required() and name not in raw
    ]
    if missing:
        raise bad_input(
            f"credentials of {provider.name!r} not set: set {', '.join(missing)} {_WHERE}"
        )
    try:
        return provider.credentials_model.model_validate(raw)
    except ValidationError as exc:
        problem = _validation_problem(exc)
        problem = _as_variables(provider, problem) or problem
        raise bad_input(f"credentials of {provider.name!r}: {problem}") from None


@providers_app.command("try", short_help="Send one test message through one provider.")
def try_provider(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The provider to send through.")],
    to: Annotated[
        str, typer.Option(metavar="NUMBER", help="Recipient phone number (international format).")
    ],
    channel: Annotated[str, typer.Option(metavar="sms|voice", help="sms or voice.")] = "sms",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="A provider setting (repeatable)."),
    ] = None,
    locale: Annotated[
        str, typer.Option(metavar="LOCALE", help="Locale of the message (voice language).")
    ] = "en",
    timeout: Annotated[
        float, typer.Option(min=0.1, metavar="SECONDS", help="Seconds to wait for the provider.")
    ] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Send one test message (a random code) through one provider, outside any tenant."""
    import asyncio
    import secrets

    from pydantic import ValidationError

    from runtime.errors import PhoneActionsError
    from runtime.events import Channel
    from runtime.ids import new_id
    from runtime.phone_numbers import needs_country, normalise_e164
    from runtime.providers import PhoneMessage
    from runtime.templates import render

    if channel not in ("sms", "voice"):
        raise bad_input(f"--channel: {channel!r} is not sms or voice")
    registry = _registry()
    try:
        provider = registry.get(name)
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None
    try:
        recipient = normalise_e164(to)
    except ValueError as exc:
        if needs_country(to):  # no tenant here, so no default_country to read it in
            raise bad_input(
                "--to: has no country code: give the number in international form, + and "
                "the country code (+1 415 555 2671)"
            ) from None
        raise bad_input(f"--to: {exc}") from None
    if channel not in provider.channels:
        raise bad_input(
            f"{name!r} does not send {channel} (it sends {', '.join(sorted(provider.channels))})"
        )
    try:
        config = provider.config_model.model_validate(_parse_sets(set_ or []))
    except ValidationError as exc:
        raise bad_input(f"settings of {name!r}: {_validation_problem(exc)}") from None
    credentials = _credentials(provider)
    code = f"{secrets.randbelow(10**6):06d}"
    typed_channel: Channel = "voice" if channel == "voice" else "sms"
    message = PhoneMessage(
        id=new_id(),
        tenant="providers-try",
        recipient=recipient,
        channel=typed_channel,
        purpose="verification",
        locale=locale,
        code=code,
        text=render(
            None,
            channel=typed_channel,
            purpose="verification",
            code=code,
            locale=locale,
            tenant_id="providers-try",
            tenant_name="phone-actions",
        ),
        timeout=timeout,
    )
    _check_before_sending(provider, message, config, credentials)
    result = asyncio.run(_send_once(provider, message, config, credentials))
    if as_json:
        typer.echo(json.dumps(result))
    else:
        from runtime.providers import reaches_phones

        _print_result(result, reaches_phones=reaches_phones(provider))
    if result["status"] != "sent":
        raise typer.Exit(EXIT_NOT_DELIVERED)


def _as_options(provider: Provider[BaseModel, BaseModel], text: str) -> str | None:
    """`` (--set service_plan_id=VALUE)`` for each setting field ``text`` names; None when it
    names none."""
    import re

    named = [
        field
        for field in provider.config_model.model_fields
        if re.search(rf"(?<![\w-]){re.escape(field)}(?![\w-])", text)
    ]
    if not named:
        return None
    return f"{text} ({', '.join(f'--set {field}=VALUE' for field in named)})"


def _check_before_sending(
    provider: Provider[BaseModel, BaseModel],
    message: PhoneMessage,
    config: BaseModel,
    credentials: BaseModel,
) -> None:
    """What the provider would refuse before any request (a setting or a credential this
    channel needs: ``Sinch SMS needs the service_plan_id setting``) is bad input, said with
    the variable or the ``--set`` key to give; nothing is sent."""
    from runtime.errors import ProviderError
    from runtime.providers import check_send

    try:
        check_send(provider, message, config, credentials)
    except ProviderError as exc:
        if exc.code != "configuration_error":
            raise
        variables = _as_variables(provider, exc.message)
        if variables is not None:
            raise bad_input(f"credentials of {provider.name!r}: {variables}") from None
        options = _as_options(provider, exc.message) or exc.message
        raise bad_input(f"settings of {provider.name!r}: {options}") from None


async def _send_once(
    provider: Provider, message: PhoneMessage, config: BaseModel, credentials: BaseModel
) -> dict[str, Any]:
    import time

    from runtime.errors import ProviderError

    started = time.perf_counter()
    result: dict[str, Any] = {"provider": provider.name, "channel": message.channel}
    try:
        receipt = await provider.send(message, config, credentials)
        result.update(status="sent", message_id=receipt.message_id, provider_status=receipt.status)
    except ProviderError as exc:
        error = exc.message
        if exc.code == "configuration_error":  # "needs the api_token credential": which variable
            error = _as_variables(provider, error) or error
        result.update(
            status="failed",
            error_code=exc.code,
            error=error,
            retryable=exc.retryable,
            handed_off=exc.handed_off,
        )
    finally:
        await provider.aclose()
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _print_result(result: dict[str, Any], *, reaches_phones: bool = True) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    if result["status"] == "sent" and not reaches_phones:  # the outbox: kept, not sent
        console.print(
            f"[green]stored[/green] {result['channel']} in {escape(result['provider'])}, "
            "[bold]not sent to a phone[/bold]: "
            f"message id {escape(str(result['message_id']))} ({result['latency_ms']} ms)"
        )
        return
    if result["status"] == "sent":
        console.print(
            f"[green]sent[/green] {result['channel']} through {escape(result['provider'])}: "
            f"message id {escape(str(result['message_id']))} ({result['latency_ms']} ms)"
        )
        return
    error = escape(f"[{result['error_code']}] {result['error']}")
    console.print(
        f"[red]failed[/red] {result['channel']} through {escape(result['provider'])}: "
        f"{error}\n"
        f"retryable: {'yes' if result['retryable'] else 'no'}; "
        f"handed off: {'yes' if result['handed_off'] else 'no'} ({result['latency_ms']} ms)"
    )
