"""The service's commands: ``serve``, ``tenants create`` and ``token create``.

``serve`` runs the API with uvicorn on a socket it binds itself (so ``--port 0`` works and
the printed URL is the real one) and opens the service's parts around uvicorn's loop: a bad
setting or an unreachable database is one line and exit 2, and SIGINT/SIGTERM stop taking
requests, let in-flight ones finish, then close everything and exit 0. ``serve --demo`` (what
``make run`` runs) creates the tenant ``demo`` on first start and prints a token and a curl
command that sends a code into the outbox. Heavy modules are imported inside the commands.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from runtime.cli_tenants import tenants_app
from runtime.console import bad_input, settings_or_exit

if TYPE_CHECKING:
    import socket

    from runtime.settings import Settings
    from runtime.store.service import ServiceStore

__all__ = ["DEMO_TENANT", "create_tenant", "serve", "token_app"]

DEMO_TENANT = "demo"
DEMO_TTL = 86400
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

token_app = typer.Typer(
    help="Tokens for the Management API (Auth0's scopes, one tenant each).",
    no_args_is_help=True,
)


@contextmanager
def _store(settings: Settings) -> Iterator[ServiceStore]:
    """The service's store on the settings' database (migrated), for one command."""
    from runtime.store.crypto import Keyring
    from runtime.store.db import create_engine_for, migrate
    from runtime.store.service import ServiceStore

    master = settings.master_key.get_secret_value() if settings.master_key else None
    engine = create_engine_for(settings.resolved_database_url, timeout=settings.store_timeout)
    try:
        migrate(engine)
        yield ServiceStore(engine, Keyring.load(master, settings.data_dir))
    finally:
        engine.dispose()


@contextmanager
def _errors_as_exit(settings: Settings) -> Iterator[None]:
    """Bad input, configuration and unusable resources: one line on stderr and exit 2."""
    from runtime.console import resource_error, resource_errors
    from runtime.errors import PhoneActionsError

    try:
        yield
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None
    except resource_errors() as exc:
        raise bad_input(resource_error(exc, settings)) from None


@tenants_app.command("create", short_help="Create an empty tenant in the database.")
def create_tenant(
    tenant_id: Annotated[str, typer.Argument(metavar="ID", help="The tenant's id.")],
    friendly_name: Annotated[
        str | None, typer.Option(metavar="NAME", help="The name its messages show.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tenant as JSON.")] = False,
) -> None:
    """Create an empty tenant (the default sender, SMS) in the service's database."""
    settings = settings_or_exit()
    with _errors_as_exit(settings), _store(settings) as store:
        row = store.tenants.create(tenant_id, friendly_name=friendly_name)
    if as_json:
        typer.echo(json.dumps(_tenant_json(row), default=str))
    else:
        typer.echo(f"created tenant {tenant_id!r}")


@token_app.command("create", short_help="Print a token for one tenant with the scopes given.")
def create_token(
    tenant: Annotated[str, typer.Option(metavar="ID", help="The tenant the token acts for.")],
    scope: Annotated[
        str,
        typer.Option(
            metavar="SCOPES",
            help='Space-separated scopes, e.g. "read:actions create:actions" (Auth0\'s names).',
        ),
    ],
    ttl: Annotated[
        int, typer.Option(min=1, max=366 * 86400, metavar="SECONDS", help="Lifetime.")
    ] = 86400,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print Auth0's token response as JSON.")
    ] = False,
) -> None:
    """Print a bearer token for TENANT with SCOPES (the tenant must exist)."""
    from runtime.api.scopes import SCOPES, unknown_scopes
    from runtime.api.tokens import SigningKeys

    scopes = scope.replace(",", " ").split()
    if not scopes:
        raise bad_input("--scope: give at least one scope")
    unknown = unknown_scopes(scopes)
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], list(SCOPES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise bad_input(
            f"--scope: unknown scope {unknown[0]!r}{hint}; known scopes: {', '.join(SCOPES)}"
        )
    settings = settings_or_exit()
    with _errors_as_exit(settings):
        with _store(settings) as store:
            store.tenants.get(tenant)  # NotFoundError: no token for a tenant that is not there
        token = SigningKeys.from_settings(settings).issue(tenant=tenant, scopes=scopes, ttl=ttl)
    if as_json:
        response = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": " ".join(scopes),
        }
        typer.echo(json.dumps(response))
    else:
        typer.echo(token)


def serve(
    host: Annotated[str, typer.Option(metavar="HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, metavar="PORT", help="Port (0: any free one).")
    ] = 8000,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Create the tenant 'demo' on first start; print a token and a curl command "
            "that sends a code into the outbox (make run).",
        ),
    ] = False,
    log_level: Annotated[
        str, typer.Option(metavar="LEVEL", help="debug, info, warning or error.")
    ] = "info",
) -> None:
    """Serve the Management API (and POST /api/v2/phone/messages) until interrupted."""
    import asyncio

    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise bad_input(f"--log-level: {log_level!r} is not one of debug, info, warning, error")
    settings = settings_or_exit()
    sock = _bind(host, port)
    flush_logs = _configure_logging(level)
    try:
        with _errors_as_exit(settings):
            if demo:
                with _store(settings) as store:
                    created = _ensure_demo_tenant(store)
            try:
                asyncio.run(_serve(settings, sock, demo=demo, created=demo and created))
            except KeyboardInterrupt:  # a second Ctrl-C while closing
                raise typer.Exit(130) from None
    finally:
        flush_logs()
    typer.echo("phone-actions: stopped", err=True)  # after every log line


async def _serve(settings: Settings, sock: socket.socket, *, demo: bool, created: bool) -> None:
    import signal

    import uvicorn

    from runtime.api.app import create_app
    from runtime.heap import settle

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        lifespan="off",  # opened here, around uvicorn: start errors are one line, exit 2
        access_log=False,  # ours carries the request id (runtime.api.access)
        log_config=None,
        loop="asyncio",  # not uvloop: the sandbox's worker sockets need asyncio's transports
        http="httptools",  # uvicorn's C parser: ~110 us less CPU a request than h11
        timeout_graceful_shutdown=30,
        server_header=False,
    )
    server = uvicorn.Server(config)
    host, port = sock.getsockname()[:2]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    # SIGINT/SIGTERM from here on stop the server, even before uvicorn takes them over; and
    # uvicorn re-raises the signal that stopped it once done: handled here too, so that
    # leaving this block closes the pipeline and the store before the exit
    stopped: list[int] = []
    draining: list[int] = []  # signals since the server stopped, while the pipeline drains

    def stop(signum: int, _frame: object) -> None:
        stopped.append(signum)
        server.should_exit = True
        if not draining_now:
            return
        draining.append(signum)
        if len(draining) == 1:
            typer.echo(
                "phone-actions: still finishing the deliveries in flight and writing their "
                "events; send the signal again to stop at once (their events may be lost)",
                err=True,
            )
        else:  # asked twice: the operator's call
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    draining_now = False

    # Installed around the lifespan, not only around serve: a signal while the pipeline
    # drains its last deliveries and flushes their events (leaving the block) only asks
    # again to stop; the default action would kill the process in the middle of the drain.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        async with app.router.lifespan_context(app):
            settle()  # what is open now lives as long as the process: out of the full GC passes
            if demo:
                _print_demo(settings, url, created)
            typer.echo(f"phone-actions: serving on {url} (Ctrl-C stops)", err=True)
            await server.serve(sockets=[sock])
            draining_now = True  # leaving the block drains the pipeline and flushes the log
            typer.echo(
                "phone-actions: stopped serving; finishing the deliveries in flight", err=True
            )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; in use or not local: one line, exit 2."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        reason = exc.strerror or exc
        raise bad_input(f"--host/--port: cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def _configure_logging(level: int) -> Callable[[], None]:
    """Log lines (one access line a request) go to stderr through a writer thread of their
    own, in batches (:mod:`runtime.stderr_log`): a slow reader of stderr never blocks the
    event loop, and a busy server does not pay a thread wake-up per line."""
    from runtime.api.middleware import RequestIdFilter
    from runtime.stderr_log import configure

    return configure(level, LOG_FORMAT, RequestIdFilter())


def _ensure_demo_tenant(store: ServiceStore) -> bool:
    """Create the demo tenant unless it exists; True when it was created now."""
    from runtime.errors import NotFoundError

    try:
        store.tenants.get(DEMO_TENANT)
    except NotFoundError:
        store.tenants.create(DEMO_TENANT, friendly_name="Demo")
        return True
    return False


def _print_demo(settings: Settings, url: str, created: bool) -> None:
    from runtime.api.scopes import SCOPES
    from runtime.api.tokens import SigningKeys

    token = SigningKeys.from_settings(settings).issue(
        tenant=DEMO_TENANT, scopes=list(SCOPES), ttl=DEMO_TTL
    )
    body = json.dumps({"to": "+14155552671", "code": "123456"})
    curl = (
        f"curl -sS -X POST {url}/api/v2/phone/messages "
        f"-H {shlex.quote('Authorization: Bearer ' + token)} "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )
    state = "created now" if created else "already there"
    typer.echo(f"Tenant {DEMO_TENANT!r} ({state}); a token with every scope, valid 24 h:")
    typer.echo(f"TOKEN={token}")
    typer.echo("Send a code into the outbox:")
    typer.echo(curl)
    typer.echo(f"Then list it: {_this_command()} outbox --tenant {DEMO_TENANT}")
    typer.echo(f"API docs: {url}/api/v2/docs")
    typer.echo(f"Web console: {url}/console/ (sign in with the token above)")


def _this_command() -> str:
    """How to run phone-actions again: as it was invoked when that was a path not on PATH
    (``make run`` runs ``.venv/bin/phone-actions``: the bare name is "command not found" in a
    shell without the venv), else the bare name."""
    invoked = sys.argv[0] if sys.argv else ""
    if "/" not in invoked or os.path.basename(invoked) != "phone-actions":
        return "phone-actions"
    on_path = shutil.which("phone-actions")
    if on_path and os.path.realpath(on_path) == os.path.realpath(invoked):
        return "phone-actions"
    return shlex.quote(invoked)


def _tenant_json(row: Any) -> Any:
    to_api = getattr(row, "to_api", None)
    return to_api() if callable(to_api) else {"id": getattr(row, "id", None)}
