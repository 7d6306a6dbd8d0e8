"""A tenant's caps hold when nodes create at once: 40 creates racing on four engines (four
nodes) leave exactly the cap of log streams and of usage triggers, on SQLite and PostgreSQL
(where counting then inserting in a plain transaction let 16 and 11 through)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from runtime.errors import PhoneActionsError
from runtime.logs.streams import MAX_STREAMS, LogStreamRepository
from runtime.store import create_engine_for, migrate
from runtime.store.crypto import Keyring
from runtime.store.schema import log_streams, usage_triggers
from runtime.store.service import ServiceStore
from runtime.usage_triggers.store import MAX_PER_TENANT, UsageTriggerStore
from tests.store.conftest import sqlite_url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def setup(url: str, tmp_path: Path) -> tuple[Keyring, str]:
    engine = create_engine_for(url, timeout=10)
    migrate(engine)
    keys = Keyring.load(None, tmp_path / "keys")
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    ServiceStore(engine, keys).tenants.create(tenant)
    engine.dispose()
    return keys, tenant


def race(url: str, create: Callable[[Engine], None], attempts: int = 40) -> None:
    """``attempts`` creates at once, spread over four engines of their own."""
    engines = [create_engine_for(url, timeout=10) for _ in range(4)]
    start = threading.Barrier(attempts)
    problems: list[BaseException] = []

    def one(engine: Engine) -> None:
        start.wait()
        try:
            create(engine)
        except PhoneActionsError:
            pass  # over the cap: refused, as it should be
        except BaseException as exc:
            problems.append(exc)

    threads = [threading.Thread(target=one, args=(engines[n % 4],)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    assert problems == []


def count(url: str, table: Any, tenant: str) -> int:
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            query = select(func.count()).select_from(table).where(table.c.tenant == tenant)
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def test_racing_creates_leave_at_most_the_cap_of_log_streams(
    url: str, setup: tuple[Keyring, str]
) -> None:
    keys, tenant = setup
    body = {"type": "http", "sink": {"httpEndpoint": "https://logs.example.com/in"}}

    def create(engine: Engine) -> None:
        LogStreamRepository(engine, keys, allow_http_hosts=[]).create(tenant, body)

    race(url, create)
    assert count(url, log_streams, tenant) == MAX_STREAMS


def test_racing_creates_leave_at_most_the_cap_of_usage_triggers(
    url: str, setup: tuple[Keyring, str]
) -> None:
    keys, tenant = setup
    body = {"period": "hour", "threshold": 1, "url": "https://hooks.example.com/x"}

    def create(engine: Engine) -> None:
        UsageTriggerStore(engine, keys).create(tenant, body)

    race(url, create)
    assert count(url, usage_triggers, tenant) == MAX_PER_TENANT
