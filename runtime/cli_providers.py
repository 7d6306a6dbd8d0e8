"""``phone-actions providers``: what each provider needs, and ``providers try`` to test one."""

from __future__ import annotations

import typer

providers_app = typer.Typer(
    help="List the registered providers, or send one test message through one.",
    no_args_is_help=False,
    invoke_without_command=True,
)
