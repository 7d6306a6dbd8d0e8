"""The FastAPI app: :func:`create_app` wires the service's parts in its lifespan.

The lifespan opens, in order: the signing keys, the master keyring, the store's executor, the
database (migrated on the executor: never on the loop), the :class:`ServiceStore`, the
:class:`StoreTenantDirectory` (its refresh task; no tenant is loaded before serving: each on
its first use), and the delivery pipeline on that directory; it closes them in reverse.
Every module in ``runtime/api/routers/`` that exposes ``router`` is included. The OpenAPI
document is at ``/api/v2/openapi.json`` and its page at ``/api/v2/docs``: Swagger UI served
from the ``swagger-ui-bundle`` package (no CDN).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from runtime.api import routers
from runtime.api.auth import document_bearer
from runtime.api.deps import Services
from runtime.api.errors import install_handlers
from runtime.api.middleware import MAX_BODY_BYTES, RequestContextMiddleware
from runtime.api.tokens import SigningKeys
from runtime.api.web_console import mount_console
from runtime.errors import StoreUnavailableError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from runtime.delivery import Pipeline
    from runtime.sandbox.host.runner import SandboxRunner
    from runtime.settings import Settings

__all__ = ["DOCS_URL", "OPENAPI_URL", "create_app", "open_services"]

log = logging.getLogger("runtime.api")

OPENAPI_URL = "/api/v2/openapi.json"
DOCS_URL = "/api/v2/docs"
_ASSETS = "/api/v2/docs/assets"
HOT_ROUTERS = ("messages", "verify")
"""Router modules whose routes come first: the ones that send codes. A request is matched by
walking the route list in order (about a microsecond a route), so the busiest paths lead."""
_MIGRATION_BUDGET = 10  # store timeouts: migrations may wait for another node's lock


def create_app(settings: Settings | None = None, *, pipeline: Pipeline | None = None) -> FastAPI:
    """The service. ``settings`` default to the environment's; a ``pipeline`` given here is
    used as it is and left open (its owner closes it), else one is built on the store."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, pipeline=pipeline) as services:
            app.state.services = services
            app.state.signing_keys = SigningKeys.from_settings(services.settings)
            app.state.sandbox_start = None  # started by the first /readyz or action run
            yield

    app = FastAPI(
        title="phone-actions Management API",
        version=version("phone-actions"),
        description="Auth0-compatible Management API for phone messages: actions, "
        "guardian phone factor, phone providers and templates; plus sending a code.",
        openapi_url=OPENAPI_URL,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry hooks off: the service's metrics are Prometheus's
        # (/metrics) and its events are log events; checking for OTel providers on every
        # request cost ~60 us of CPU (bench/api.py, profiled)
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body=MAX_BODY_BYTES)
    _install_docs(app)
    names = sorted(m.name for m in pkgutil.iter_modules(routers.__path__))
    for name in sorted(names, key=lambda name: name not in HOT_ROUTERS):
        module = importlib.import_module(f"{routers.__name__}.{name}")
        router = getattr(module, "router", None)
        if router is not None:
            _add_routes(app, router)
    mount_console(app)  # the web console (docs/console.md), after the API's routes
    document_bearer(app)
    return app


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    """``router``'s routes straight into the app's own list, as routes declared on the app.

    Not ``include_router``: FastAPI keeps an included router as one lazy branch, and every
    request then walks each branch's routes through its scope bookkeeping (~250 µs of CPU a
    request with ten routers, measured by bench/api.py's profile); a flat list costs one
    regex per route. The module routers' routes already carry their prefix, tags and
    dependencies, so the app serves and documents them the same way."""
    if router.dependencies:  # applied at inclusion in this FastAPI: keep them on each route
        raise ValueError(f"router {router.prefix!r}: declare its dependencies on each route")
    app.router.routes.extend(router.routes)


@asynccontextmanager
async def open_services(
    settings: Settings | None = None, *, pipeline: Pipeline | None = None
) -> AsyncIterator[Services]:
    """Open every part of the service (see the module docstring); close them on exit."""
    from runtime.delivery import Pipeline
    from runtime.settings import load_settings
    from runtime.store.crypto import Keyring
    from runtime.store.directory import StoreTenantDirectory
    from runtime.store.executor import StoreExecutor
    from runtime.store.service import ServiceStore

    settings = settings or load_settings()
    master = settings.master_key.get_secret_value() if settings.master_key else None
    keyring = Keyring.load(master, settings.data_dir)
    SigningKeys.from_settings(settings)  # a bad signing key stops the start, not a request
    executor = StoreExecutor(max_workers=settings.store_workers)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(executor.shutdown, False)
        engine = await executor.run(
            _open_engine, settings, timeout=settings.store_timeout * _MIGRATION_BUDGET
        )
        stack.push_async_callback(_dispose, executor, engine, settings.store_timeout)
        store = ServiceStore(engine, keyring)
        directory = StoreTenantDirectory(store, max_tenants=settings.tenant_cache_size)
        await directory.start()  # no tenant is loaded here: each on its first use
        stack.push_async_callback(directory.aclose)
        if pipeline is None:
            pipeline = Pipeline.from_settings(settings, tenants=directory)
            stack.push_async_callback(pipeline.aclose)
            await pipeline.open_store()
            await pipeline.start_background()
        runner, owned = _sandbox_runner(pipeline, settings)
        if owned:
            stack.push_async_callback(runner.aclose)
        from runtime.signals import open_signals  # metrics, usage triggers (docs/operations.md)

        stack.push_async_callback((await open_signals(store, executor, pipeline, runner)).aclose)
        yield Services(
            settings=settings,
            engine=engine,
            keyring=keyring,
            store=store,
            executor=executor,
            runner=runner,
            pipeline=pipeline,
            directory=directory,
        )


def _open_engine(settings: Settings) -> Engine:
    from runtime.store.db import create_engine_for, migrate

    engine = create_engine_for(settings.resolved_database_url, timeout=settings.store_timeout)
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


async def _dispose(executor: object, engine: Engine, budget: float) -> None:
    from runtime.store.executor import StoreExecutor

    assert isinstance(executor, StoreExecutor)
    try:
        await executor.run(engine.dispose, timeout=budget)
    except StoreUnavailableError as exc:  # a database that hangs: do not wait on it
        log.warning("closing the database: %s", exc)


def _sandbox_runner(pipeline: Pipeline, settings: Settings) -> tuple[SandboxRunner, bool]:
    """The sandbox the pipeline's action providers run in (one pool of workers for the
    whole service), or a new one when no such provider is registered (then owned here)."""
    from runtime.sandbox.host.runner import SandboxRunner

    for name in ("phone-message-hook", "custom"):
        with contextlib.suppress(LookupError, Exception):
            runner = getattr(pipeline.providers.get(name), "_runner", None)
            if isinstance(runner, SandboxRunner):
                return runner, False
    from runtime.sandbox.host.egress import EgressPolicy
    from runtime.sandbox.shared.oslayers import isolation_from_settings

    return (
        SandboxRunner(
            limits=settings.sandbox_limits(),
            policy=EgressPolicy(allow_http_hosts=frozenset(settings.sandbox_allow_http_hosts)),
            max_workers=settings.sandbox_max_workers,
            require_seccomp=settings.sandbox_require_seccomp,
            isolation=isolation_from_settings(settings),
        ),
        True,
    )


def sandbox_started(app: FastAPI) -> asyncio.Task[None]:
    """The one task that starts the sandbox (made on first use; shared by every caller)."""
    task: asyncio.Task[None] | None = app.state.sandbox_start
    if task is None:
        services: Services = app.state.services
        task = asyncio.create_task(services.runner.start(), name="sandbox-start")
        app.state.sandbox_start = task
    return task


def _install_docs(app: FastAPI) -> None:
    """Swagger UI from the ``swagger-ui-bundle`` package's files: the page works offline."""
    import swagger_ui_bundle  # type: ignore[import-untyped]
    from fastapi.openapi.docs import get_swagger_ui_html

    app.mount(_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs")

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs_page() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title="phone-actions Management API",
            swagger_js_url=f"{_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
