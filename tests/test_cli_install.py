"""The package as pip installs it into site-packages, not as the repository's editable copy.

The distribution claims two top-level import names, ``runtime`` and ``plugins``. A user's
folder that holds its own ``plugins`` package (or a copy of ``runtime``) shadows ours when it
is the current directory of ``python -c``/``python -m``: the start fails with one line naming
the shadowing folder, not with ``No module named 'plugins.outbox'`` and a traceback.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
START = "from runtime.plugins import get_plugin_manager; get_plugin_manager(load_entrypoints=False)"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """phone-actions built from a copy of the project (the shared tree gets no build/ folder)
    and pip-installed, offline, into a fresh target folder."""
    work = tmp_path_factory.mktemp("installed")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("runtime", "plugins"):
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    target = work / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def run(code: str, *, cwd: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in ``cwd`` (first on sys.path) with the installed copy importable."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_installed_package_ships_py_typed_and_its_data(site: Path) -> None:
    assert (site / "runtime" / "py.typed").is_file()
    assert (site / "runtime" / "store" / "migrations" / "script.py.mako").is_file()


def test_the_installed_package_starts_from_a_plain_folder(site: Path, tmp_path: Path) -> None:
    done = run(START + "; import runtime; print(runtime.__file__)", cwd=tmp_path, site=site)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(site / "runtime" / "__init__.py")


def test_a_folder_with_its_own_plugins_package_fails_naming_it(site: Path, tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "__init__.py").write_text("# the user's own plugins\n")
    done = run(START, cwd=tmp_path, site=site)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert f"the package 'plugins' is imported from {tmp_path / 'plugins'}" in last
    assert str(site / "plugins") in last
    assert "No module named" not in done.stderr


def test_the_cli_says_it_in_one_line_and_exits_2(site: Path, tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "__init__.py").write_text("")
    code = "import sys; from runtime.cli import app; sys.argv = ['phone-actions', 'plugins']; app()"
    done = run(code, cwd=tmp_path, site=site)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: the package 'plugins' is imported from {tmp_path}")


def test_a_copy_of_runtime_in_the_folder_is_named_too(site: Path, tmp_path: Path) -> None:
    shutil.copytree(site / "runtime", tmp_path / "runtime")
    done = run(START, cwd=tmp_path, site=site)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert f"the package 'runtime' is imported from {tmp_path / 'runtime'}" in last
    assert f"installed phone-actions ({site / 'runtime'})" in last


def test_plugins_without_the_builtins_is_named(site: Path, tmp_path: Path) -> None:
    """An installation whose ``plugins`` lost a built-in module (a partial copy)."""
    (site / "plugins" / "outbox.py").rename(site / "plugins" / "outbox.py.away")
    try:
        done = run(START, cwd=tmp_path, site=site)
    finally:
        (site / "plugins" / "outbox.py.away").rename(site / "plugins" / "outbox.py")
    assert done.returncode != 0
    assert "lacks the built-in plugins plugins.outbox" in done.stderr.strip().splitlines()[-1]
