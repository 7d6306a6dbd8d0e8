"""The public API of ``runtime`` for plugin authors: listed, importable, documented, typed."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import runtime

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("docs/writing_plugins.md", "docs/hooks.md")


def test_all_is_sorted_and_unique() -> None:
    assert list(runtime.__all__) == sorted(set(runtime.__all__))


@pytest.mark.parametrize("name", runtime.__all__)
def test_every_public_name_imports_in_a_fresh_interpreter(name: str) -> None:
    """``from runtime import NAME`` works from nothing (the names are loaded on first use)."""
    done = subprocess.run(
        [sys.executable, "-c", f"from runtime import {name}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_every_public_name_is_the_object_its_home_module_defines() -> None:
    homes = runtime._HOME
    assert set(homes) == set(runtime.__all__)
    for name in runtime.__all__:
        assert getattr(importlib.import_module(homes[name]), name) is getattr(runtime, name)


def test_every_public_name_is_documented_for_plugin_authors() -> None:
    text = "".join((ROOT / page).read_text(encoding="utf-8") for page in DOCS)
    undocumented = [name for name in runtime.__all__ if f"`{name}`" not in text]
    assert not undocumented, f"public names missing from {' or '.join(DOCS)}: {undocumented}"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        runtime.Nope  # type: ignore[attr-defined]  # noqa: B018
    assert set(runtime.__all__) <= set(dir(runtime))


def test_submodules_still_import_as_attributes() -> None:
    from runtime import templates

    assert templates.__name__ == "runtime.templates"


def test_the_package_is_marked_typed() -> None:
    """PEP 561: without ``py.typed`` a type checker ignores our annotations in plugins."""
    assert (ROOT / "runtime" / "py.typed").is_file()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["runtime"]
