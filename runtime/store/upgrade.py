"""Alembic ``upgrade head`` under a lock, so any number of processes may start at once.

(Not named ``migrate``: a submodule of that name would shadow ``runtime.store.migrate``.)

The lock: on a SQLite file, ``fcntl.flock`` on a sibling ``<database>.lock`` file (SQLite's
own locks do not cover Alembic reading the version before it writes); on PostgreSQL, a
transaction-level advisory lock. The upgrade runs in one transaction: the first process
migrates, the others then find the schema at head and do nothing.

A database made by ``metadata.create_all`` before there were migrations (its tables, no
``alembic_version``) is stamped at the revision that matches it, then upgraded.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from runtime.errors import ConfigurationError
from runtime.store.db import describe, unavailable

__all__ = ["BASELINE", "MIGRATIONS", "current_revision", "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"  # what create_all made: idempotency_records alone
_ADVISORY_KEY = 0x70686F6E65  # "phone": one advisory lock id for the runtime's migrations
_PG_WAIT = "60s"  # a migration may wait for another process's; the engine's 2 s is for calls


def upgrade(engine: Engine) -> None:
    """Bring ``engine``'s database to the head revision (see the module docstring)."""
    try:
        with _file_lock(engine), engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{_PG_WAIT}'")
                    conn.exec_driver_sql(f"SET LOCAL statement_timeout = '{_PG_WAIT}'")
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_KEY})")
                config = _config(conn)
                if _made_by_create_all(conn):
                    command.stamp(config, BASELINE)
                command.upgrade(config, "head")
    except CommandError as exc:
        raise ConfigurationError(
            f"database {describe(engine)}: cannot migrate: {exc} (head of this version of "
            f"phone-actions: {head_revision()})"
        ) from None
    except (DBAPIError, PoolTimeoutError, OSError) as exc:
        raise unavailable(engine, "migrating the schema", exc) from None


def head_revision() -> str:
    """The newest revision this version of phone-actions knows."""
    head = ScriptDirectory.from_config(_config(None)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision ``engine``'s database is at (None: never migrated)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _config(conn: Connection | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _made_by_create_all(conn: Connection) -> bool:
    """The runtime's tables without Alembic's version table: made before migrations."""
    if MigrationContext.configure(conn).get_current_revision() is not None:
        return False
    return inspect(conn).has_table("idempotency_records")


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """An exclusive ``flock`` on ``<database>.lock`` for a SQLite file; nothing otherwise."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    fd = os.open(f"{database}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd closes, even if we crash
        yield
    finally:
        os.close(fd)
