"""``phone-actions tenants``: tenants in the service's database.

``tenants import FILE`` brings a tenants file of the TOML format into the database (the
service's store); ``tenants create ID`` (the API's commands) makes an empty one. Heavy modules
are imported inside the commands: ``phone-actions --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from runtime.console import bad_input, settings_or_exit

__all__ = ["tenants_app"]

tenants_app = typer.Typer(
    help="Tenants in the service's database: import a tenants file, create one.",
    no_args_is_help=True,
)


@tenants_app.command("import", short_help="Import a tenants file (TOML) into the database.")
def import_tenants_command(
    file: Annotated[Path, typer.Argument(help="A tenants file of the TOML format.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Import FILE's tenants into the service's database (PHONE_ACTIONS_DATABASE_URL, else
    SQLite in PHONE_ACTIONS_DATA_DIR): delivery settings, providers, action scripts (stored,
    deployed and bound), phone limits, credentials read from the environment now and sealed
    (each tenant's settings and credentials checked against its provider's first). Running it
    again updates what it imported."""
    from runtime.console import resource_error, resource_errors
    from runtime.errors import PhoneActionsError
    from runtime.plugins import collect_providers, get_plugin_manager
    from runtime.store.crypto import Keyring
    from runtime.store.db import create_engine_for, migrate
    from runtime.store.service import ServiceStore
    from runtime.store.service.importer import import_tenants
    from runtime.tenants import TomlTenantDirectory, check_providers, read_tenants_file

    settings = settings_or_exit()
    master = settings.master_key.get_secret_value() if settings.master_key else None
    try:
        # FILE is the argument, not PHONE_ACTIONS_TENANTS_FILE: an error names it, before the
        # database is opened (the import reads it again: a tenants file is small)
        read_tenants_file(file, given_as="FILE")
        # each tenant's provider is one the plugins register (third-party ones too, loaded as
        # the pipeline loads them), or the import would store a tenant that cannot deliver
        registry = collect_providers(get_plugin_manager(settings=settings), settings)
        check_providers(TomlTenantDirectory.from_file(file), [p.name for p in registry])
        engine = create_engine_for(settings.resolved_database_url, timeout=settings.store_timeout)
        try:
            migrate(engine)
            store = ServiceStore(engine, Keyring.load(master, settings.data_dir))
            done = import_tenants(store, file, providers=registry)
        finally:
            engine.dispose()
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None
    except resource_errors() as exc:
        raise bad_input(resource_error(exc, settings)) from None
    if as_json:
        typer.echo(json.dumps([item.as_dict() for item in done], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("tenant", "provider", "action", "status")
    for item in done:
        table.add_row(
            item.tenant,
            item.provider,
            item.action_id or "",
            "created" if item.created else "updated",
        )
    Console().print(table)
