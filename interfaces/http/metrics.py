"""``GET /metrics``: Prometheus exposition, optionally behind a bearer token."""

from __future__ import annotations

import hmac
from typing import Annotated

from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from domain.shared.errors import Unauthenticated
from infrastructure.observability.metrics import CONTENT_TYPE, Metrics
from infrastructure.settings import Settings
from interfaces.container import Container
from interfaces.http.errors import problem_responses

router = APIRouter(tags=["operations"])
metrics_bearer = HTTPBearer(auto_error=False, description="SWITCHBOARD_METRICS_TOKEN, when one is configured.")


@router.get(
    "/metrics",
    summary="Prometheus metrics (optionally behind SWITCHBOARD_METRICS_TOKEN)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"},
        **problem_responses(401),
    },
)
@inject
async def metrics(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(metrics_bearer)],
    registry: Metrics = Depends(Provide[Container.metrics]),
    settings: Settings = Depends(Provide[Container.settings]),
) -> Response:
    if settings.metrics_token is not None:
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), settings.metrics_token.get_secret_value().encode()):
            raise Unauthenticated("a valid metrics token is required")
    return Response(registry.render(), media_type=CONTENT_TYPE)
