"""``GET /metrics``: the Prometheus text exposition of :mod:`runtime.metrics`.

Off (404) until ``metrics_token`` is set; then only a request bearing that token is answered
(the series name tenants and their volumes: not for the tenants' own tokens to read).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response

from runtime import metrics
from runtime.api.deps import ServicesDep
from runtime.api.errors import ApiError

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics (bearer: metrics_token)")
async def prometheus_metrics(request: Request, svc: ServicesDep) -> Response:
    token = svc.settings.metrics_token
    if token is None:
        raise ApiError(404, "metrics are off: set PHONE_ACTIONS_METRICS_TOKEN", "not_found")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise ApiError(401, "metrics need the bearer token metrics_token", "invalid_token")
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
