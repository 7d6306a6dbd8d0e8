"""``phone-actions --help`` and the pytest plugin start fast because they import little.

Wall time on a loaded 2-core CI machine says nothing, so these tests check what a fresh
interpreter imports instead. Measured (python -X importtime; /usr/bin/time, load average 19):
``import runtime.cli`` 1.50 s cumulative before, 0.24 s after; ``phone-actions --help``
0.84 s CPU before, 0.08 s CPU after (0.29-0.33 s wall under that load); ``import
runtime.pytest_plugin`` after pytest 5.7 ms (it pulled the sandbox, httpx and pydantic before).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from runtime.cli import app

HEAVY = (
    "twilio",
    "aiohttp",
    "httpx",
    "sqlalchemy",
    "alembic",
    "RestrictedPython",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "liquid",
    "phonenumbers",
    "rich",
    "boto3",
    "psycopg",
    "runtime.sandbox",
    "runtime.delivery",
    "runtime.store",
    "plugins",
)
"""Packages that cost tens to hundreds of milliseconds to import, or that start machinery."""


def imported_after(statement: str, *, before: str = "") -> list[str]:
    """The modules a fresh interpreter imports for ``statement`` (after ``before``)."""
    probe = (
        "import sys, json\n"
        f"{before}\n"
        "seen = set(sys.modules)\n"
        f"{statement}\n"
        "print(json.dumps(sorted(set(sys.modules) - seen)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return list(json.loads(done.stdout.splitlines()[-1]))


def heavy_in(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_importing_the_cli_pulls_no_heavy_module() -> None:
    modules = imported_after("import runtime.cli")
    assert "runtime.cli" in modules
    assert heavy_in(modules) == []


def test_help_runs_without_importing_heavy_modules() -> None:
    """The whole ``--help`` path, Typer's rendering included (plain help: no Rich)."""
    modules = imported_after(
        "from runtime.cli import app\n"
        "try:\n"
        "    app(['--help'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "print()  # the help ends without a newline of its own"
    )
    assert heavy_in(modules) == []


def test_importing_the_pytest_plugin_pulls_no_heavy_module() -> None:
    modules = imported_after("import runtime.pytest_plugin", before="import pytest")
    assert "runtime.pytest_plugin" in modules
    assert heavy_in(modules) == []
    assert "asyncio" not in modules  # the event loop is made by the first replay


def test_public_names_are_still_importable_from_runtime() -> None:
    modules = imported_after("from runtime import hookimpl")
    assert "runtime.hookspecs" in modules
    assert heavy_in(modules) == []


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_version(runner: CliRunner) -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"phone-actions {version('phone-actions')}\n"


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["send"],
        ["replay"],
        ["plugins"],
        ["outbox"],
        ["test-action"],
        ["doctor"],
        ["providers"],
        ["providers", "try"],
        ["schema"],
    ],
)
def test_help_fits_80_columns_and_shows_flags_as_flags(
    runner: CliRunner, command: list[str]
) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 80, [line for line in lines if len(line) > 80]
    assert "--no-json" not in result.output
    assert "<bool>" not in result.output  # a flag takes no value
    described = [line for line in lines if not line.startswith("Usage:")]
    assert not any(line.rstrip().endswith("...") for line in described), "a help line is cut"
    for line in lines:
        if line.strip().startswith("--json"):  # "--json  Print JSON.": no value after it
            assert line.split()[1][0].isupper(), line


def test_every_command_that_prints_data_has_json() -> None:

    from runtime.cli_plugins import with_plugin_commands

    group = with_plugin_commands(app)  # outbox is plugins.outbox's
    printing = {"send", "replay", "plugins", "outbox", "test-action", "doctor"}
    for name in printing:
        command = group.commands[name]
        flags = [opt for p in command.params for opt in p.opts]
        assert "--json" in flags, name
    providers: Any = group.commands["providers"]
    assert "--json" in [opt for p in providers.params for opt in p.opts]
    assert "--json" in [opt for p in providers.commands["try"].params for opt in p.opts]
