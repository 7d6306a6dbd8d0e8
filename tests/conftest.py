"""Shared fixtures: pipelines on a temporary data folder, throwaway providers, service URLs."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
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
        "attempt_timeout": 2.0,
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


@pytest.fixture
def postgres_url() -> str:
    return service_url("PHONE_ACTIONS_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture
def never_set() -> asyncio.Event:
    """An event nothing sets: a provider awaiting it hangs until cancelled."""
    return asyncio.Event()
