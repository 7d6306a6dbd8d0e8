"""Plivo provider plugin: one-time codes by SMS and by voice call through Plivo's REST API.

Voice calls fetch their XML from this service's answer app: run :func:`serve_answers` where
the tenants' ``answer_base_url`` points (see ``docs/providers/plivo.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from plugins.plivo.answers import AnswerStore, answer_app, serve_answers
from plugins.plivo.provider import PlivoConfig, PlivoCredentials, PlivoProvider
from runtime import hookimpl

if TYPE_CHECKING:
    from runtime.providers import Provider
    from runtime.settings import Settings

__all__ = [
    "AnswerStore",
    "PlivoConfig",
    "PlivoCredentials",
    "PlivoProvider",
    "answer_app",
    "plivo_answers",
    "register_commands",
    "register_providers",
    "serve_answers",
]


@hookimpl
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register the Plivo provider; its session and answer store open on first use."""
    register(PlivoProvider(settings=settings))


@hookimpl
def register_commands(cli: typer.Typer) -> None:
    """``phone-actions providers plivo-answers``: the answer app of voice calls."""
    providers = typer.Typer(rich_markup_mode=None)
    providers.command(
        "plivo-answers", short_help="Serve the answer documents of Plivo voice calls."
    )(plivo_answers)
    cli.add_typer(providers, name="providers")


def plivo_answers(
    host: Annotated[str, typer.Option(metavar="HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=1, max=65535, metavar="PORT", help="Port to listen on.")
    ] = 8081,
) -> None:
    """Serve the answer documents of Plivo voice calls (put it behind answer_base_url)."""
    import asyncio

    from rich.console import Console

    from runtime.console import bad_input, settings_or_exit

    settings = settings_or_exit()
    Console(stderr=True).print(
        f"serving Plivo answers on http://{host}:{port}/plivo/answer/<token> (Ctrl-C stops)"
    )
    try:
        asyncio.run(serve_answers(settings, host, port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise bad_input(f"cannot listen on {host}:{port}: {exc.strerror}") from None
