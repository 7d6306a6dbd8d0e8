"""Hook specifications: the whole plugin contract of phone-actions.

Plugins write ``from runtime import hookimpl`` and implement any of these by name. Hooks only
ever gain arguments, and pluggy lets an implementation accept fewer than the spec offers, so a
plugin written today keeps working.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

    from runtime.attempt_hooks import AttemptContext
    from runtime.events import DeliveryReport, PhoneMessageRequest
    from runtime.providers import PhoneMessage, Provider, Receipt
    from runtime.settings import Settings

PROJECT_NAME = "phone_actions"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]


@hookspec(historic=True)
def configure(settings: Settings) -> None:
    """Receive the runtime's settings once, at start.

    Historic: a plugin registered later is still called with the settings. Results are ignored.
    """


@hookspec
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register delivery providers by calling ``register(provider)`` once per provider.

    Every implementation is called; a provider name registered twice is an error that names
    both plugins. ``settings`` is there for providers that need the data directory or limits.
    """


@hookspec(firstresult=True)
def before_send(message: PhoneMessage) -> str | None:
    """Veto a message before any provider sees it: return a reason to stop it, else None.

    The first non-None reason wins (later implementations are not called) and the message ends
    as a ``rejected`` report with reason ``vetoed`` and that text as its detail. Never raise
    to veto: an exception is a plugin bug and fails the delivery.
    """


@hookspec
def after_send(request: PhoneMessageRequest, report: DeliveryReport) -> None:
    """Observe the final report of every delivery: delivered, rejected or failed.

    Called once per request, even for one rejected before rendering (an unknown tenant), hence
    the request rather than the rendered message; not for a report replayed for a repeated
    idempotency key (its request was observed). ``report.attempts`` has every attempt.
    Every implementation is called; results are ignored. An exception is logged and does not
    change the report: observers never decide whether a code was sent. ``request.code`` is
    the OTP: never log it.
    """


@hookspec
def around_attempt(attempt: AttemptContext) -> Generator[None, Receipt, Receipt | None]:
    """Wrap every provider attempt: implement it as ``@hookimpl(wrapper=True)``, yielding once.

    The code before ``yield`` runs before the provider's ``send`` starts (set
    ``attempt.observer`` to see its HTTP exchanges, register ``attempt.delivery.on_report``
    to get the final report); ``yield`` returns the receipt or raises the attempt's error.
    Wrappers observe: an exception is logged and changes nothing, and neither does what a
    wrapper returns. Only generator wrappers are accepted (``PluginError`` otherwise).
    """
    raise NotImplementedError  # a specification: the runtime drives the implementations


@hookspec
def register_commands(cli: typer.Typer) -> None:
    """Add commands to ``phone-actions``: call ``@cli.command()`` on the Typer app given.

    Called when a command the CLI does not know is asked for (and by ``phone-actions
    plugins``), with every plugin loaded; ``phone-actions --help`` loads no plugin, so it
    lists the built-in commands only. A name taken by another command is a ``PluginError``.
    """
