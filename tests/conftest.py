"""Shared fixtures: pipelines on a temporary data folder, throwaway providers, service URLs,
and a PostgreSQL database of each test module's own (created, then dropped)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from runtime.delivery import Pipeline
from runtime.settings import Settings
from runtime.tenants import TomlTenantDirectory

PipelineFactory = Callable[..., Pipeline]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "tenants_file": tmp_path / "tenants.toml",
        # The budget of an attempt that should succeed: generous, because on a loaded 2-core CI
        # machine a local answer or a sandbox worker's cold start can take seconds. Tests of a
        # timeout set their own short budget.
        "attempt_timeout": 5.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def make_pipeline(tmp_path: Path) -> AsyncIterator[PipelineFactory]:
    """Build pipelines from a ``{"tenant": {...}}`` mapping; all are closed after the test."""
    built: list[Pipeline] = []

    def factory(
        tenants: dict[str, dict[str, Any]],
        *,
        plugins: tuple[object, ...] = (),
        environ: dict[str, str] | None = None,
        **overrides: Any,
    ) -> Pipeline:
        directory = TomlTenantDirectory.from_mapping({"tenants": tenants}, environ=environ or {})
        pipeline = Pipeline.from_settings(
            make_settings(tmp_path, **overrides),
            tenants=directory,
            plugins=plugins,
            load_entrypoints=False,
        )
        built.append(pipeline)
        return pipeline

    yield factory
    for pipeline in built:
        await pipeline.aclose()


def read_log(pipeline: Pipeline) -> list[dict[str, Any]]:
    """The JSON Lines log events ``pipeline`` wrote, once its writer has caught up."""
    pipeline.flush_logs()
    path = pipeline.settings.resolved_log_file
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def service_url(variable: str, what: str) -> str:
    """A test service URL from the environment; skip without it, unless services are required."""
    url = os.environ.get(variable)
    if url:
        return url
    message = f"{what} not configured: set {variable} (.ci/run does) to run this test"
    if os.environ.get("PHONE_ACTIONS_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


POSTGRES_PREFIX = "test_pa_"
"""Databases this suite makes on the PostgreSQL server: ``test_pa_<unix time>_<random>``."""
STALE_AFTER = 6 * 3600
"""A database of this suite older than this (seconds) is left from a killed run: dropped."""


def postgres_server_url() -> str:
    """The PostgreSQL server's URL (its ``test`` database: never written by tests, only
    used to create and drop theirs). Skips, or fails, as :func:`service_url` says."""
    return service_url("PHONE_ACTIONS_TEST_POSTGRES_URL", "PostgreSQL")


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """The URL of a new, empty database on ``server_url``'s server, dropped (even with
    connections still open: ``WITH (FORCE)``) when the block ends, so no run leaves rows
    behind. Databases of killed runs older than :data:`STALE_AFTER` are dropped first."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    name = f"{POSTGRES_PREFIX}{int(time.time())}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            _drop_stale(conn)
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _drop_stale(conn: Any) -> None:
    names = conn.exec_driver_sql("SELECT datname FROM pg_database").scalars().all()
    for found in names:
        made = found.removeprefix(POSTGRES_PREFIX).split("_")[0]
        stale = made.isdigit() and time.time() - int(made) > STALE_AFTER
        if found.startswith(POSTGRES_PREFIX) and stale:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{found}" WITH (FORCE)')


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test module, dropped after it."""
    with fresh_postgres_database(postgres_server_url()) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """This module's own PostgreSQL database (:func:`postgres_database`)."""
    return postgres_database


@pytest.fixture
def never_set() -> asyncio.Event:
    """An event nothing sets: a provider awaiting it hangs until cancelled."""
    return asyncio.Event()
