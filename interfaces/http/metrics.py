"""``GET /metrics``: Prometheus exposition, optionally behind a bearer token."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Header, Response

from domain.shared.errors import Unauthenticated
from infrastructure.observability.metrics import CONTENT_TYPE, Metrics
from infrastructure.settings import Settings
from interfaces.container import Container
from interfaces.http.dependencies import provided

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
async def metrics(
    authorization: str = Header(""),
    registry: Metrics = Depends(provided(Container.metrics)),
    settings: Settings = Depends(provided(Container.settings)),
) -> Response:
    if settings.metrics_token is not None:
        expected = "Bearer " + settings.metrics_token.get_secret_value()
        if not hmac.compare_digest(authorization.encode(), expected.encode()):
            raise Unauthenticated("a valid metrics token is required")
    return Response(registry.render(), media_type=CONTENT_TYPE)
