"""``phone-actions tenants``: tenants in the service's database.

``tenants import FILE`` brings a tenants file of the TOML format into the database (the
service's store); ``tenants create ID`` (the API's commands) makes an empty one. Heavy modules
are imported inside the commands: ``phone-actions --help`` stays fast.
"""

from __future__ import annotations

import typer

__all__ = ["tenants_app"]

tenants_app = typer.Typer(
    help="Tenants in the service's database: import a tenants file, create one.",
    no_args_is_help=True,
)
