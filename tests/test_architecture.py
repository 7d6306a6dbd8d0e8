"""The sandbox's trust boundary holds in the code, and docs/architecture.md matches the tree.

Guest code (the zygote and the workers, where tenant code runs) must never import the host
side: a worker that imported the pool, the egress or the store would carry the trusted
process's code and state next to tenant code. ``make lint`` checks it with import-linter
(pyproject's ``[tool.importlinter]``); these tests check the same with an ast walk that is
stricter (nothing of ``runtime`` but ``guest`` and ``shared``), prove that both checks bite,
and keep the architecture page true.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = ROOT / "runtime" / "sandbox"
ALLOWED = {
    "guest": ("runtime.sandbox.guest", "runtime.sandbox.shared"),
    "shared": ("runtime.sandbox.shared",),
}
"""What each side of the sandbox may import of ``runtime`` (itself included)."""


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """Every module ``path`` imports, at any depth (functions too), relative ones resolved,
    plus string constants naming a ``runtime`` module (``importlib.import_module`` targets)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.fullmatch(r"runtime(\.\w+)+", node.value)
        ):
            found.append((node.lineno, node.value))
    return found


def violations(folder: Path, allowed: tuple[str, ...], root: Path = ROOT) -> list[str]:
    """``file:line imports module`` for each import of ``runtime`` outside ``allowed``."""
    bad = []
    for path in sorted(folder.rglob("*.py")):
        for line, module in imported_modules(path, root):
            if module != "runtime" and not module.startswith("runtime."):
                continue
            if module.startswith("runtime.sandbox.") and any(
                module == ok or module.startswith(ok + ".") for ok in allowed
            ):
                continue
            if module in {"runtime", "runtime.sandbox"}:  # the package docstrings only
                continue
            bad.append(f"{path.relative_to(root)}:{line} imports {module}")
    return bad


@pytest.mark.parametrize("side", sorted(ALLOWED))
def test_guest_and_shared_import_nothing_of_the_trusted_side(side: str) -> None:
    assert violations(SANDBOX / side, ALLOWED[side]) == []


def _fake_tree(tmp_path: Path, guest_source: str) -> Path:
    """A copy of the sandbox's layout with one guest module of the test's own."""
    for folder in ("runtime/sandbox/guest", "runtime/sandbox/host", "runtime/sandbox/shared"):
        (tmp_path / folder).mkdir(parents=True)
    for init in ("runtime", "runtime/sandbox", *(f"runtime/sandbox/{s}" for s in ALLOWED)):
        (tmp_path / init / "__init__.py").write_text("")
    (tmp_path / "runtime/sandbox/host/__init__.py").write_text("")
    (tmp_path / "runtime/sandbox/host/pool.py").write_text("POOL = 1\n")
    (tmp_path / "runtime/sandbox/shared/frames.py").write_text("FRAME = 1\n")
    (tmp_path / "runtime/sandbox/guest/probe.py").write_text(guest_source)
    return tmp_path


@pytest.mark.parametrize(
    "source",
    [
        "from runtime.sandbox.host.pool import POOL\n",
        "def later():\n    from ..host import pool\n    return pool\n",
        "import importlib\nMOD = importlib.import_module('runtime.sandbox.host.pool')\n",
        "import runtime.store\n",
    ],
    ids=["absolute", "relative-in-function", "import_module", "other-trusted-package"],
)
def test_the_ast_check_bites_on_a_guest_module_that_imports_the_host(
    tmp_path: Path, source: str
) -> None:
    root = _fake_tree(tmp_path, source)
    found = violations(root / "runtime/sandbox/guest", ALLOWED["guest"], root)
    assert found
    assert all(v.startswith("runtime/sandbox/guest/probe.py:") for v in found)


def test_the_ast_check_lets_guest_import_shared(tmp_path: Path) -> None:
    root = _fake_tree(tmp_path, "from ..shared.frames import FRAME\nimport json\n")
    assert violations(root / "runtime/sandbox/guest", ALLOWED["guest"], root) == []


def _lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "lint-imports"
    if not exe.exists():
        pytest.fail("lint-imports is missing: pip install -e '.[dev]' (import-linter)")
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [str(exe), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_make_lint_import_contracts_are_kept_by_the_tree() -> None:
    done = _lint_imports(ROOT, ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_make_lint_import_contract_bites_on_a_guest_module_that_imports_the_host(
    tmp_path: Path,
) -> None:
    """pyproject's own contracts, run on a small tree whose guest imports the host's pool."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    root = _fake_tree(tmp_path, "from runtime.sandbox.host.pool import POOL\n")
    lines = ['[tool.importlinter]\nroot_package = "runtime"\n']
    for contract in contracts:
        forbidden = [m for m in contract["forbidden_modules"] if m.startswith("runtime.sandbox")]
        lines.append(
            "[[tool.importlinter.contracts]]\n"
            f"name = {contract['name']!r}\ntype = {contract['type']!r}\n"
            f"source_modules = {contract['source_modules']!r}\n"
            f"forbidden_modules = {forbidden!r}\n"
        )
    (root / "pyproject.toml").write_text("\n".join(lines).replace("'", '"'))
    done = _lint_imports(root, root)
    assert done.returncode != 0
    assert "BROKEN" in done.stdout
    assert "runtime.sandbox.guest.probe -> runtime.sandbox.host.pool" in done.stdout


# --------------------------------------------------------------- docs/architecture.md

PAGE = ROOT / "docs" / "architecture.md"


def test_every_path_the_architecture_page_names_exists() -> None:
    """A newcomer follows the page into the tree: every runtime/ or plugins/ path it names
    (a folder, a module) must be there."""
    named = set(re.findall(r"\b((?:runtime|plugins)/[\w./*-]*\w/?)", PAGE.read_text()))
    missing = sorted(p for p in named if "*" not in p and not (ROOT / p).exists())
    assert named
    assert missing == []


def test_every_runtime_package_is_on_the_architecture_page() -> None:
    text = PAGE.read_text()
    packages = [
        p.parent.relative_to(ROOT).as_posix() + "/"
        for p in (ROOT / "runtime").glob("*/__init__.py")
    ]
    packages += [f"runtime/sandbox/{side}/" for side in ("host", "guest", "shared")]
    assert [p for p in sorted(packages) if p not in text] == []


def test_every_sandbox_module_is_in_the_architecture_page_module_map() -> None:
    text = PAGE.read_text()
    modules = [
        p.relative_to(SANDBOX).as_posix() for p in SANDBOX.glob("*/*.py") if p.name != "__init__.py"
    ]
    modules += ["host/egress/"]
    assert [m for m in sorted(modules) if f"`{m}`" not in text] == []
