"""The repository stands on its own: no pointers to documents outside it, the contract tests'
specs inside it with their digests, the licence pyproject declares, and CI linting first.

A fresh clone is all a contributor (or CI) has: a file that sends readers to notes that live
beside the repository sends them nowhere.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "tests" / "specs"

# Spelled in pieces so that this file does not name what it forbids.
OUTSIDE_POINTERS = [
    *(name + ".md" for name in ("DESIGN", "SANDBOX", "PROVIDERS", "AUTH0_REFERENCE")),
    "../" + "shared",
    "/work/" + "shared",
]


def tracked_files() -> list[Path]:
    """Every file git tracks (a checkout without git, e.g. an sdist, skips)."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    listed = subprocess.run(
        [git, "-C", str(ROOT), "ls-files", "-z"], check=True, capture_output=True
    ).stdout
    return [ROOT / name for name in listed.decode("utf-8").split("\0") if name]


def test_no_tracked_file_points_at_documents_outside_the_repository() -> None:
    found = []
    for path in tracked_files():
        if not path.is_file():  # deleted in the working tree, not yet committed
            continue
        data = path.read_bytes()
        if b"\0" in data:  # binary
            continue
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            found += [
                f"{path.relative_to(ROOT)}:{number}: {pointer}"
                for pointer in OUTSIDE_POINTERS
                if pointer in line
            ]
    assert found == [], "write what is needed into docs/ or the comment itself:\n" + "\n".join(
        found
    )


def spec_digests() -> dict[str, str]:
    """The sha256 table of tests/specs/SOURCES.md, by file name."""
    text = (SPECS / "SOURCES.md").read_text("utf-8")
    return dict(re.findall(r"^\| `([^`]+)` \| ([0-9a-f]{64}) \|$", text, re.MULTILINE))


def test_every_spec_is_listed_with_its_digest_and_matches_it() -> None:
    digests = spec_digests()
    specs = {p.name for p in SPECS.iterdir() if p.suffix in {".json", ".yml", ".yaml"}}
    assert specs, "the contract tests' specs are missing from tests/specs"
    assert set(digests) == specs, "SOURCES.md's sha256 table and tests/specs differ"
    for name, digest in digests.items():
        actual = hashlib.sha256((SPECS / name).read_bytes()).hexdigest()
        assert actual == digest, f"{name} changed: update SOURCES.md (source, patch) with it"


def test_every_spec_has_a_source_and_a_licence() -> None:
    text = (SPECS / "SOURCES.md").read_text("utf-8")
    for name in spec_digests():
        [entry] = [e for e in text.split("\n- ") if e.startswith(f"`{name}` — ")]
        assert re.search(r"commit\s+[0-9a-f]{40}", entry), f"{name}: no upstream commit"
        assert re.search(r"Licence:\s+(MIT|Apache-2\.0)", entry), f"{name}: no licence"
    for notice in ("LICENSE-MIT-twilio", "LICENSE-MIT-nexmo"):
        assert "Permission is hereby granted" in (SPECS / notice).read_text("utf-8")


def test_the_licence_file_is_the_one_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["license"]
    assert declared == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text("utf-8")
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the full text, not a pointer to it


def test_ci_lints_before_it_tests() -> None:
    steps = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text("utf-8").splitlines()
        if line.strip().startswith("make ")
    ]
    assert steps == ["make lint", "make test"]
