"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: database reachable,
migrations applied, sandbox started). Neither needs a token: orchestrators probe them."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from runtime.api.app import sandbox_started
from runtime.api.deps import ServicesDep
from runtime.api.errors import error_body
from runtime.errors import PhoneActionsError

router = APIRouter(tags=["health"])

SANDBOX_START_BUDGET = 10.0
"""Seconds /readyz waits for the sandbox's first start (its zygote) before saying not ready;
the start goes on, and a later probe finds it done."""


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The service can serve requests",
    responses={503: {"description": "A check failed: its line says which and why"}},
)
async def readyz(request: Request, svc: ServicesDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        revision, head = await svc.call(_schema, svc.engine)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if revision == head else f"at {revision}, head is {head}"
    except PhoneActionsError as exc:
        checks["database"] = str(exc)
        checks["migrations"] = "unknown"
    except Exception as exc:  # a driver error the store did not wrap: still one line
        checks["database"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        checks["migrations"] = "unknown"
    checks["sandbox"] = await _sandbox(request)
    failed = [name for name, state in checks.items() if state != "ok"]
    if not failed:
        return JSONResponse({"status": "ready", "checks": checks})
    body: dict[str, Any] = error_body(503, f"not ready: {', '.join(failed)}", "service_unavailable")
    body["checks"] = checks
    return JSONResponse(body, status_code=503)


def _schema(engine: Engine) -> tuple[str | None, str]:
    """The database's revision and the code's head (a round trip: reachable or not)."""
    from runtime.store.db import unavailable
    from runtime.store.upgrade import current_revision, head_revision

    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return current_revision(engine), head_revision()
    except PhoneActionsError:
        raise
    except Exception as exc:
        raise unavailable(engine, "the readiness check", exc) from None


async def _sandbox(request: Request) -> str:
    task = sandbox_started(request.app)
    try:
        await asyncio.wait_for(asyncio.shield(task), SANDBOX_START_BUDGET)
    except TimeoutError:
        return f"still starting after {SANDBOX_START_BUDGET:g} s"
    except Exception as exc:
        request.app.state.sandbox_start = None  # try again on the next probe
        return f"cannot start: {exc}"
    return "ok"


# HEAD where GET is: load balancers and link checkers probe with it (the server sends the
# headers alone). Left out of the schema: the GET operations document them.
router.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)
router.add_api_route("/readyz", readyz, methods=["HEAD"], include_in_schema=False)
