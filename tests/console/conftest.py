"""Browser tests of the web console: a real ``phone-actions serve`` process and Debian's
Chromium driven by Playwright (never a browser Playwright downloads).

Fixtures and helpers for every ``tests/console`` module:

- ``console_server`` (module): the service on 127.0.0.1 with a SQLite data folder of its own
  and two tenants; ``.base_url``, ``.tenant_a``, ``.tenant_b``, ``.token(tenant, *scopes)``
  (every scope in :data:`ALL_SCOPES` when none is given) and ``.request(...)`` to set data up
  through the public API.
- ``browser`` (session) and ``page`` (a fresh context per test). A page fails its test on an
  uncaught script error, a Content-Security-Policy violation or a request to another origin.
- :func:`signed_in` opens ``/console`` and signs in; ``screenshot(page, name)`` (a fixture)
  saves ``name.png`` in the test's tmp folder and, when ``PHONE_ACTIONS_CONSOLE_SCREENSHOTS``
  names a folder, there too (``docs/console/*.png`` are made that way).

Without Chromium (``PHONE_ACTIONS_CHROMIUM`` or /usr/bin/chromium) or the playwright package
the tests skip, and the run's summary says so; with ``PHONE_ACTIONS_REQUIRE_SERVICES=1``
(.ci/run) they fail instead.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from runtime.api.scopes import SCOPES
from runtime.api.tokens import SigningKeys
from runtime.settings import Settings
from tests.api.conftest import api_settings, create_tenants, new_tenant
from tests.api.processes import READY, ServiceProcess

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PHONE_ACTIONS = str(Path(sys.executable).with_name("phone-actions"))
CHROMIUM = os.environ.get("PHONE_ACTIONS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ALL_SCOPES: tuple[str, ...] = tuple(SCOPES)
"""Every scope the console's pages need (all the service knows)."""
SCREENSHOTS_ENV = "PHONE_ACTIONS_CONSOLE_SCREENSHOTS"
WAIT_MS = 30_000
"""How long an expectation waits for the page (a loaded 2-core CI machine, a sandbox worker's
cold start): Playwright polls the condition, so a passing test does not wait this long."""

_skipped: list[str] = []


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (
            f"console browser tests skipped: Chromium not found at {CHROMIUM} "
            "(Debian: apt-get install chromium)"
        )
    if _playwright_missing():
        return "console browser tests skipped: the playwright package is not installed"
    return None


def _playwright_missing() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return True
    return False


if _playwright_missing() and os.environ.get("PHONE_ACTIONS_REQUIRE_SERVICES") != "1":
    # the test modules import playwright: not collected at all, and the summary says why
    # (when the tests are required, their import error fails the run instead)
    collect_ignore_glob = ["test_*.py"]
    _skipped.append(
        "console browser tests skipped: the playwright package is not installed "
        "(pip install -e '.[dev]')"
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped:
        terminalreporter.write_line(_skipped[0], yellow=True, bold=True)


@dataclass
class ConsoleServer:
    """A running ``phone-actions serve`` and what the tests need to talk to it."""

    base_url: str
    settings: Settings
    tenant_a: str
    tenant_b: str
    process: ServiceProcess
    _keys: SigningKeys | None = field(default=None, repr=False)

    @property
    def console_url(self) -> str:
        return f"{self.base_url}/console/"

    def token(self, tenant: str | None = None, *scopes: str) -> str:
        """A token for ``tenant`` (default A) with ``scopes`` (default: all of them)."""
        if self._keys is None:
            self._keys = SigningKeys.from_settings(self.settings)
        chosen = list(scopes) if scopes else list(ALL_SCOPES)
        return self._keys.issue(tenant=tenant or self.tenant_a, scopes=chosen, ttl=3600)

    def request(
        self, method: str, path: str, *, tenant: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One call to the public API as ``tenant`` (default A) with every scope."""
        headers = {"Authorization": f"Bearer {self.token(tenant)}"}
        return httpx.request(
            method, f"{self.base_url}{path}", headers=headers, timeout=120, **kwargs
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    """``phone-actions serve`` on a free port of 127.0.0.1, with two tenants of its own."""
    data_dir = tmp_path_factory.mktemp("console") / "data"
    settings = api_settings(data_dir)
    tenant_a, tenant_b = new_tenant(), new_tenant()
    create_tenants(settings, tenant_a, tenant_b)
    port = _free_port()
    process = ServiceProcess(
        [PHONE_ACTIONS, "serve", "--host", "127.0.0.1", "--port", str(port)],
        data_dir,
        PHONE_ACTIONS_TENANTS_FILE=str(settings.tenants_file),
        # actions under test may call this service itself (plain http to a loopback address
        # is allowed for a host:port listed here only: hence a port chosen before the start)
        PHONE_ACTIONS_SANDBOX_ALLOW_HTTP_HOSTS=f'["127.0.0.1:{port}"]',
    )
    try:
        url = process.wait_for(READY).group(1)
        yield ConsoleServer(url, settings, tenant_a, tenant_b, process)
        process.stop()
    finally:
        process.kill()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright.

    Package-scoped, not session-scoped: Playwright's sync API keeps an event loop running in
    the main thread while it is open, and every later test that calls ``asyncio.run`` would
    fail with "cannot be called from a running event loop"; it stops with tests/console."""
    reason = _missing()
    if reason:
        if os.environ.get("PHONE_ACTIONS_REQUIRE_SERVICES") == "1":
            pytest.fail(reason.replace("skipped", "required (PHONE_ACTIONS_REQUIRE_SERVICES=1)"))
        if not _skipped:
            _skipped.append(reason)
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, console_server: ConsoleServer) -> Iterator[Page]:
    """A fresh browser context and page; the test fails on a script error, a CSP violation
    or any request leaving the service's origin (the console must work offline)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    origin = console_server.base_url

    def on_request(request: Any) -> None:
        url = str(request.url)
        if not (url.startswith(origin + "/") or url.startswith("data:")):
            problems.append(f"request to another origin: {url}")

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            problems.append(f"CSP violation: {message.text}")

    context.on("request", on_request)
    tab = context.new_page()
    tab.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    tab.on("console", on_console)
    try:
        yield tab
    finally:
        context.close()
    assert not problems, problems


def signed_in(page: Page, server: ConsoleServer, token: str | None = None) -> Page:
    """Open the console and sign in with ``token`` (default: tenant A, every scope); returns
    once the navigation shows and the first page has rendered."""
    from playwright.sync_api import expect

    page.goto(server.console_url)
    page.get_by_label("Management API token").fill(token or server.token())
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("nav-actions")).to_be_visible()
    expect(page.locator("main")).not_to_have_attribute("aria-busy", "true")  # page rendered
    return page


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Page, str], Path]:
    """``screenshot(page, name)``: the page as ``name.png`` in the test's tmp folder, and in
    ``$PHONE_ACTIONS_CONSOLE_SCREENSHOTS`` when set; returns the tmp file."""

    def take(page: Page, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        folder = os.environ.get(SCREENSHOTS_ENV)
        if folder:
            target = Path(folder)
            target.mkdir(parents=True, exist_ok=True)
            (target / f"{name}.png").write_bytes(path.read_bytes())
        return path

    return take
