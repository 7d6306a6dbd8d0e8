"""docs/console.md stays true: a section per page the console serves, and every screenshot it
shows is in the repository and made by a browser test (so running the tests remakes it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "console.md").read_text(encoding="utf-8")
PAGES = ROOT / "runtime" / "console" / "static" / "pages"


def page_titles() -> list[str]:
    titles = []
    for module in sorted(PAGES.glob("*.js")):
        found = re.search(r'^\s*title: "([^"]+)"', module.read_text(encoding="utf-8"), re.M)
        assert found, f"{module.name} declares no title"
        titles.append(found.group(1))
    return titles


def test_every_page_has_its_section() -> None:
    sections = set(re.findall(r"^### (.+)$", DOC, re.M))
    assert set(page_titles()) <= sections, "a page of the console is not in docs/console.md"


def test_every_screenshot_shown_exists_and_a_test_makes_it() -> None:
    shown = re.findall(r"!\[[^\]]*\]\(console/([\w-]+)\.png\)", DOC)
    assert shown
    tests = "".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "tests" / "console").glob("test_*.py")
    )
    made = set(re.findall(r'screenshot\(page, "([\w-]+)"\)', tests))
    for name in shown:
        assert (ROOT / "docs" / "console" / f"{name}.png").is_file(), name
        assert name in made, f"no test makes docs/console/{name}.png"
