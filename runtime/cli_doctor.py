"""The ``doctor`` command: checks this installation (sandbox isolation, plugins, default
sender, tenants file, data folder, log file) and prints one row per check.

Its own module, imported only when the command runs: it starts a sandbox zygote and loads
every plugin, which the other commands' ``--help`` must never pay for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from runtime.console import settings_or_exit

if TYPE_CHECKING:
    from runtime.sandbox.host.context import InvocationContext
    from runtime.settings import Settings

__all__ = ["doctor"]

Check = tuple[str, bool | None, str]
"""One row: the check's name, ok (True), off (None: a warning) or a problem (False), detail."""


class _NoServices:
    async def handle(self, context: InvocationContext, op: str, params: dict[str, Any]) -> Any:
        raise RuntimeError("doctor runs no action")


def _os_layer_checks(settings: Any) -> list[tuple[str, bool | None, str]]:
    """The sandbox's OS layers as a started zygote finds them on this host (``None``: the
    layer is off, which degrades the sandbox but is not an error)."""
    import asyncio
    import logging

    from runtime.sandbox.host.pool import SandboxPool
    from runtime.sandbox.shared.oslayers import isolation_from_settings

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

    quiet = logging.getLogger("runtime.sandbox.host.pool")
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


class _NoTenantsFile(Exception):
    """The default tenants file is not there (and no other was named)."""


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
    from runtime.sandbox.guest.oslimits import seccomp_status
    from runtime.tenants import TomlTenantDirectory, check_providers

    settings = settings_or_exit()
    checks: list[tuple[str, bool | None, str]] = []
    seccomp_ok, seccomp_why = seccomp_status()
    checks.append(("python", True, platform.python_version()))
    checks.append(("RestrictedPython", True, version("RestrictedPython")))
    checks.append(("seccomp", seccomp_ok, seccomp_why))
    checks.extend(_os_layer_checks(settings))
    registered: list[str] | None = None  # None: the plugins could not be loaded at all
    try:
        pm = get_plugin_manager(settings=settings)
        providers = collect_providers(pm, settings)
        registered = [p.name for p in providers]
        names = ", ".join(registered)
        broken = "; ".join(f"{n}: {e}" for n, e in pm.load_errors.items())
        checks.append(
            ("plugins", not broken, f"providers: {names}" + (f"; {broken}" if broken else ""))
        )
        checks.append(_default_sender_check(providers, settings))
    except PhoneActionsError as exc:
        checks.append(("plugins", False, str(exc)))
    checks.extend(_misspelt_variables())
    try:
        if "tenants_file" not in settings.model_fields_set and not settings.tenants_file.exists():
            raise _NoTenantsFile  # the default file, absent: a service keeps its tenants itself
        tenants = TomlTenantDirectory.from_file(settings.tenants_file)
        if registered is not None:  # each tenant's provider, as delivery will resolve it
            check_providers(tenants, registered)
        checks.append(("tenants", True, f"{len(tenants.ids())} in {settings.tenants_file}"))
    except _NoTenantsFile:
        checks.append(
            (
                "tenants",
                None,
                f"no tenants file ({settings.tenants_file}): send and replay read one "
                "(PHONE_ACTIONS_TENANTS_FILE); serve keeps its tenants in its database",
            )
        )
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


def _misspelt_variables(environ: Mapping[str, str] | None = None) -> list[Check]:
    """A warning row (``off``, never a problem) for each ``PHONE_ACTIONS_`` variable of the
    process environment that is no setting but close to one (``PHONE_ACTIONS_DATABSE_URL``):
    settings ignore it silently. The rule is the one that refuses such a name in ``.env``
    (:func:`runtime.env_file.misspelt_setting`)."""
    import os

    from runtime.env_file import misspelt_setting

    rows: list[Check] = []
    for variable in sorted(os.environ if environ is None else environ):
        meant = misspelt_setting(variable)
        if meant is not None:
            warning = f"warning: {variable} is not a setting and is ignored (did you mean {meant}?)"
            rows.append(("environment", None, warning))
    return rows


def _default_sender_check(providers: Any, settings: Settings) -> tuple[str, bool | None, str]:
    """The default sender resolves; a warning while it is one that reaches no phone."""
    from runtime.delivery.default_sender import DefaultSender
    from runtime.errors import PhoneActionsError

    try:
        sender = DefaultSender.from_settings(providers, settings)
    except PhoneActionsError as exc:  # a misspelt name says the closest registered one
        return ("default sender", False, str(exc))
    if not sender.reaches_phones:
        return (
            "default sender",
            None,
            f"warning: {sender.name} stores messages and sends none to phones; set "
            "PHONE_ACTIONS_DEFAULT_SENDER (and its settings and credentials) to a provider",
        )
    from runtime.wording import count

    return ("default sender", True, f"{sender.name}, cap {count(sender.cap, 'message')} per tenant")


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
