"""The web console (docs/console.md): static pages under ``/console`` that use only the public API.

The files are plain ES modules kept in source form in ``runtime/console/static`` (no build
step, no CDN). That folder holds no Python: ``runtime/console.py`` is the CLI's Rich output,
so the mount lives here. ``/console`` answers ``index.html`` with a strict
Content-Security-Policy (scripts only from this origin, no inline script or style): tenant text
the pages show can never run as code, even if a page forgot to escape it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["CONSOLE_URL", "CSP", "STATIC_DIR", "mount_console"]

CONSOLE_URL = "/console"
STATIC_DIR = Path(__file__).resolve().parent.parent / "console" / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""No inline script, style or event handler runs; nothing loads from another origin."""

_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated: an upgrade's files show at the next load
}


class _ConsoleFiles(StaticFiles):
    """Static files with the console's security headers on each answer."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_HEADERS)
        return response


def mount_console(app: FastAPI) -> None:
    """``GET /console`` (the page) and ``/console/static/...`` (its modules and style)."""
    index = STATIC_DIR / "index.html"

    async def console_page() -> FileResponse:
        return FileResponse(index, media_type="text/html; charset=utf-8", headers=_HEADERS)

    for path in (CONSOLE_URL, f"{CONSOLE_URL}/"):  # index.html names its files by full path
        app.add_api_route(path, console_page, methods=["GET"], include_in_schema=False)

    app.mount(
        f"{CONSOLE_URL}/static",
        _ConsoleFiles(directory=STATIC_DIR, check_dir=False),
        name="console",
    )
