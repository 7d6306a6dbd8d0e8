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
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONSOLE_SCOPES", "CONSOLE_URL", "CSP", "STATIC_DIR", "mount_console"]

CONSOLE_URL = "/console"
CONSOLE_SCOPES: tuple[str, ...] = (
    "read:actions",
    "create:actions",
    "update:actions",
    "delete:actions",
    "read:guardian_factors",
    "update:guardian_factors",
    "read:phone_providers",
    "create:phone_providers",
    "update:phone_providers",
    "read:phone_templates",
    "create:phone_templates",
    "update:phone_templates",
    "read:logs",
    "read:phone_messages",
    "create:phone_messages",
)
"""Every scope a call of the console's pages needs (docs/console.md prints the command that
makes such a token; tests/api/test_console_scopes.py checks each call against the API)."""
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
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated: an upgrade's files show at the next load
}
_RAW_HEADERS = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in _HEADERS.items()]


class _ConsoleHeaders:
    """ASGI middleware: every answer under ``/console`` carries the console's security headers,
    the page and its files but also a 404, a 405 or a redirect, which the app's error handlers
    build without them (an answer that sets one of them keeps its own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != CONSOLE_URL and not path.startswith(f"{CONSOLE_URL}/"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in _RAW_HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def mount_console(app: FastAPI) -> None:
    """``GET /console`` (the page; HEAD too) and ``/console/static/...`` (its modules and
    style), each answer under ``/console`` with the security headers."""
    index = STATIC_DIR / "index.html"

    async def console_page() -> FileResponse:
        return FileResponse(index, media_type="text/html; charset=utf-8")

    for path in (CONSOLE_URL, f"{CONSOLE_URL}/"):  # index.html names its files by full path
        # HEAD too: link checkers and load-balancer probes use it (headers only)
        app.add_api_route(path, console_page, methods=["GET", "HEAD"], include_in_schema=False)

    app.mount(
        f"{CONSOLE_URL}/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="console"
    )
    app.add_middleware(_ConsoleHeaders)
