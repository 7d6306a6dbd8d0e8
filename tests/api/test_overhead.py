"""What keeps the API's per-request cost low without changing what it answers: verified
tokens remembered (expiry still enforced), routes in one flat list with the code-sending ones
first, and serve's log lines written by a thread of their own (each with its request id,
all out before serve says it stopped)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute

from runtime.api import tokens
from runtime.api.app import _add_routes, create_app
from runtime.api.tokens import SigningKeys, TokenError
from runtime.settings import Settings
from tests.api.conftest import create_tenants, new_tenant
from tests.api.processes import READY, ServiceProcess

PHONE_ACTIONS = str(Path(sys.executable).with_name("phone-actions"))


def _keys(tmp_path: Path) -> SigningKeys:
    return SigningKeys.load(None, tmp_path)


def test_a_remembered_token_is_still_refused_once_expired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = _keys(tmp_path)
    token = keys.issue(tenant="t1", scopes=["read:actions"], ttl=60)
    assert keys.verify(token).tenant == "t1"  # verified and remembered
    later = time.time() + 60 + 31  # past exp + the leeway
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(TokenError) as refused:
        keys.verify(token)
    assert refused.value.error_code == "token_expired"


def test_a_changed_signature_is_never_taken_for_a_remembered_token(tmp_path: Path) -> None:
    keys = _keys(tmp_path)
    token = keys.issue(tenant="t1", scopes=["read:actions"])
    keys.verify(token)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(TokenError) as refused:
        keys.verify(forged)
    assert refused.value.error_code == "invalid_token"


def test_the_memory_of_verified_tokens_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_CACHE", 8)
    keys = _keys(tmp_path)
    issued = [keys.issue(tenant=f"t{n}", scopes=["read:actions"]) for n in range(20)]
    for token in issued:
        keys.verify(token)
    assert len(keys._verified) == 8
    assert keys.verify(issued[0]).tenant == "t0"  # forgotten, verified again in full


def test_routes_are_flat_and_the_code_sending_ones_come_first(tmp_path: Path) -> None:
    app = create_app(Settings(_env_file=None, data_dir=tmp_path))
    api_routes = [r for r in app.router.routes if isinstance(r, APIRoute)]
    assert all(type(r).__name__ != "_IncludedRouter" for r in app.router.routes)
    served = [r.path for r in api_routes if r.path.startswith("/api/v2/") and "docs" not in r.path]
    assert served[0] == "/api/v2/phone/messages"
    assert "/api/v2/actions/actions/{id}/test" in served
    assert "/api/v2/phone/messages" in app.openapi()["paths"]


def test_a_router_with_its_own_dependencies_is_refused_by_name() -> None:
    async def nothing() -> None:
        return None

    router = APIRouter(prefix="/api/v2/x", dependencies=[Depends(nothing)])
    with pytest.raises(ValueError, match="'/api/v2/x'"):
        _add_routes(FastAPI(), router)


def test_serve_writes_each_access_line_with_its_request_id_before_stopped(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    settings = Settings(_env_file=None, data_dir=data)
    tenant = new_tenant()
    create_tenants(settings, tenant)
    token = SigningKeys.from_settings(settings).issue(
        tenant=tenant, scopes=["create:phone_messages"], ttl=600
    )
    service = ServiceProcess([PHONE_ACTIONS, "serve", "--port", "0"], data)
    try:
        url = service.wait_for(READY).group(1)
        with httpx.Client(base_url=url, timeout=30) as client:
            for n in range(3):
                answer = client.post(
                    "/api/v2/phone/messages",
                    json={"to": "+14155552671", "code": "123456"},
                    headers={"Authorization": f"Bearer {token}", "X-Request-Id": f"ovh-{n}"},
                )
                assert answer.status_code == 200, answer.text
        code = service.stop()
    finally:
        service.kill()
    assert code == 0, service.output()
    lines = [line for name, line in service.seen if name == "err"]
    stopped = lines.index("phone-actions: stopped")
    for n in range(3):
        found = [
            i
            for i, line in enumerate(lines)
            if f"[ovh-{n}] POST /api/v2/phone/messages 200" in line
        ]
        assert found, service.output()
        assert found[0] < stopped, service.output()
