"""Store test fixtures: a database URL per backend, migrated engines, child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from runtime.store import create_engine_for, migrate
from tests.conftest import fresh_postgres_database, postgres_server_url

REPO = Path(__file__).resolve().parents[2]


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'phone-actions.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test runs on SQLite and on PostgreSQL (skipped when it is not configured)."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = create_engine_for(database_url, timeout=5)
    migrate(made)
    yield made
    made.dispose()


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database of this test only (dropped afterwards), for tests of
    migrations."""
    with fresh_postgres_database(postgres_server_url()) as url:
        yield url


@pytest.fixture
def tenant() -> str:
    """A tenant id of this test only (a module's tests share its PostgreSQL database)."""
    return f"t-{uuid.uuid4().hex[:16]}"


def run_together(job: str, args: list[list[str]], timeout: float = 240) -> list[dict[str, Any]]:
    """Start one child per ``args`` entry, wait until every one printed ``ready`` (imported and
    connected), release them all at once, and return each one's JSON result."""
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.store.worker", job, *a],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        for a in args
    ]
    try:
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline().strip()
            if line != "ready":
                _, err = child.communicate(timeout=timeout)
                pytest.fail(f"a child did not start: {line!r} {err[-2000:]}")
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for child in children:
            out, err = child.communicate(timeout=timeout)
            assert child.returncode == 0, err[-2000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
