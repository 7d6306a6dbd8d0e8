"""Redis for the policy tests: the machine's (shared and kept: keys carry a tenant of the test
only), or a redis-server of the test's own on a unix socket, to kill or to count commands on."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import service_url


@pytest.fixture
def redis_url() -> str:
    return service_url("PHONE_ACTIONS_TEST_REDIS_URL", "Redis")


@contextmanager
def started_redis(socket: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server on the unix socket ``socket`` (no port taken, no disk), ready when this
    enters (its readiness line, not a sleep); killed when it leaves."""
    binary = "/usr/bin/redis-server"
    if not os.path.exists(binary):
        pytest.skip("redis-server is not installed")
    process = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(socket), "--save", "", "--appendonly", "no"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if b"ready to accept connections" in line.lower():
                break
        else:
            pytest.fail("redis-server did not start")
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test only, on a unix socket."""
    socket = tmp_path / "redis.sock"
    with started_redis(socket) as process:
        yield f"unix://{socket}", process


def tenant_of_this_test() -> str:
    """A tenant id of this run only: the machine's Redis is shared and kept."""
    return f"t-{uuid.uuid4().hex[:12]}"
