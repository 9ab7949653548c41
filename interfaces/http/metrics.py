"""``GET /metrics``: Prometheus exposition, behind a bearer token when one is set, and always in production unless
it is explicitly public."""

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
    if settings.metrics_token_required:  # a token is set, or this is production and /metrics is not public
        if settings.metrics_token is None:
            raise Unauthenticated("a valid metrics token is required (SWITCHBOARD_METRICS_TOKEN is not set)")
        expected = "Bearer " + settings.metrics_token.get_secret_value()
        if not hmac.compare_digest(authorization.encode(), expected.encode()):
            raise Unauthenticated("a valid metrics token is required")
    return Response(registry.render(), media_type=CONTENT_TYPE)
