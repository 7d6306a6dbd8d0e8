"""Commands that plugins add to ``phone-actions`` (the ``register_commands`` hook).

Loading the plugins costs about a second of CPU (they import aiohttp, the Twilio SDK,
SQLAlchemy, pydantic), so ``phone-actions --help`` and the built-in commands never do it:
:class:`PluginCommands`, the class of the CLI's command groups, loads them the first time it
is asked for a command it does not know (``phone-actions outbox``), then finds the command
among theirs. A plugin adds a top-level command with ``cli.command(...)``, and a subcommand of
an existing group by adding a Typer of the same name (``cli.add_typer(sub, name="providers")``);
a name already taken is a :class:`~runtime.errors.PluginError` naming the plugin.

Each plugin's commands are built on a Typer of their own, never on ``runtime.cli.app``: the
CLI's app stays what the code declares, whatever ran before in this process.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import typer
from typer import _click as click  # Typer 0.29 vendors click: its groups are these classes
from typer._click.exceptions import MissingParameter
from typer.core import TyperGroup

__all__ = ["PluginCommands", "bad_parameter", "plugin_commands", "with_plugin_commands"]


class PluginCommands(TyperGroup):
    """A command group that asks the plugins for a command it does not know.

    It also says a bad option value in the user's terms, in one line and exit 2 (``error:
    --last: should be at least 1``): Typer checks values with pydantic and would print its
    wording (``Invalid value for '--last': Input should be greater than or equal to 1``)
    under a usage banner. A missing option keeps click's usage message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except typer.BadParameter as exc:
            if isinstance(exc, MissingParameter):
                raise
            from runtime.console import bad_input

            raise bad_input(bad_parameter(exc)) from None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        from runtime.console import bad_input
        from runtime.errors import PhoneActionsError

        try:
            theirs = plugin_commands()
        except PhoneActionsError as exc:
            raise bad_input(str(exc)) from None
        group = _find(theirs, _path(ctx))
        if group is None:
            return None
        merge(self, group, owner="a plugin")
        return super().get_command(ctx, cmd_name)


def bad_parameter(exc: typer.BadParameter) -> str:
    """``--option: what is wrong`` (the caller passes it through the wording table)."""
    if exc.param_hint is not None:
        hint = exc.param_hint if isinstance(exc.param_hint, str) else " / ".join(exc.param_hint)
    elif exc.param is not None:
        hint = exc.param.get_error_hint().replace("'", "")  # "'--last'"
    else:
        return exc.message
    return f"{hint}: {exc.message}"


def _path(ctx: click.Context) -> list[str]:
    """The names of the groups from the root down to ``ctx``'s (root: [])."""
    names: list[str] = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return names[::-1]


def _find(group: TyperGroup, path: list[str]) -> TyperGroup | None:
    for name in path:
        found = group.commands.get(name)
        if not isinstance(found, TyperGroup):
            return None
        group = found
    return group


def merge(into: TyperGroup, commands: TyperGroup, *, owner: str) -> None:
    """Add ``commands``' commands to ``into``; groups of the same name are merged."""
    from runtime.errors import PluginError

    for name, command in commands.commands.items():
        mine = into.commands.get(name)
        if mine is None:
            into.add_command(command, name)
        elif mine is command:
            continue
        elif isinstance(mine, TyperGroup) and isinstance(command, TyperGroup):
            merge(mine, command, owner=owner)
        else:
            path = f"{into.name} {name}" if into.name else name
            raise PluginError(f"{owner} adds the command {path!r}, which is taken")


def _new_cli() -> typer.Typer:
    """An empty app for one plugin's commands (a callback: Typer keeps it a group)."""
    cli = typer.Typer(rich_markup_mode=None, add_completion=False)

    @cli.callback()
    def _root() -> None:
        """Plugin commands."""

    return cli


@cache
def plugin_commands() -> TyperGroup:
    """Every plugin's commands (loaded once per process), as one click group."""
    from runtime.plugins import get_plugin_manager

    pm = get_plugin_manager()
    everything = TyperGroup()
    for impl in pm.hook.register_commands.get_hookimpls():
        cli = _new_cli()
        arguments: dict[str, Any] = {"cli": cli}
        impl.function(*(arguments[name] for name in impl.argnames))
        built = typer.main.get_command(cli)
        assert isinstance(built, TyperGroup)
        merge(everything, built, owner=f"plugin {impl.plugin_name!r}")
    return everything


def with_plugin_commands(app: typer.Typer) -> TyperGroup:
    """``app`` as a click group with every plugin command in it (docs, tests)."""
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    merge(group, plugin_commands(), owner="a plugin")
    return group
