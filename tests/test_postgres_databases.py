"""The PostgreSQL fixture leaves nothing behind: each module's database is its own, rows
written there never reach the server's shared ``test`` database, the database is gone after
the module, and databases of killed runs are dropped by the next run."""

from __future__ import annotations

from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from runtime.store.crypto import Keyring
from runtime.store.db import create_engine_for, migrate
from runtime.store.schema import tenants
from runtime.store.service import ServiceStore
from tests.conftest import POSTGRES_PREFIX, fresh_postgres_database, postgres_server_url


def databases(server: str) -> set[str]:
    engine = create_engine(server, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return set(conn.exec_driver_sql("SELECT datname FROM pg_database").scalars())
    finally:
        engine.dispose()


def test_rows_go_to_a_database_of_their_own_dropped_afterwards() -> None:
    server = postgres_server_url()
    with fresh_postgres_database(server) as url:
        name = make_url(url).database
        assert name is not None
        assert name.startswith(POSTGRES_PREFIX)
        assert name != make_url(server).database
        engine = create_engine_for(url, timeout=5)
        migrate(engine)
        ServiceStore(engine, Keyring((b"\x02" * 32,))).tenants.create("left-behind-not")
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(tenants)) == 1
        # an open connection does not keep the database alive: dropped WITH (FORCE)
        held = engine.connect()
        assert name in databases(server)
    assert name not in databases(server)
    held.close()
    engine.dispose()


def test_a_database_left_by_a_killed_run_is_dropped_by_the_next() -> None:
    server = postgres_server_url()
    left = f"{POSTGRES_PREFIX}1_0000dead"  # made at unix time 1: long stale
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{left}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{left}"')
        with fresh_postgres_database(server):
            assert left not in databases(server)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{left}"')
        admin.dispose()
