"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from infrastructure.observability.logging import get_logger
from infrastructure.observability.readiness import Readiness
from interfaces.container import Container
from interfaces.http.dependencies import provided

router = APIRouter(prefix="/health", tags=["health"])


class CheckResult(BaseModel):
    status: str
    detail: str | None = None
    duration_ms: float | None = None


class HealthResponse(BaseModel):
    status: str
    checks: dict[str, CheckResult]


@router.get("/live", summary="The process is up")
async def live() -> HealthResponse:
    return HealthResponse(status="ok", checks={})


@router.get(
    "/ready",
    summary="Database, migrations, Redis (when configured) and disk are fine; 503 when not",
    responses={503: {"model": HealthResponse}},
)
async def ready(response: Response, readiness: Readiness = Depends(provided(Container.readiness))) -> HealthResponse:
    results = await readiness.check()
    checks = {
        name: CheckResult(status="ok" if r.ok else "fail", detail=r.detail, duration_ms=r.duration_ms)
        for name, r in results.items()
    }
    ok = all(r.ok for r in results.values())
    response.status_code = 200 if ok else 503
    if not ok:
        failing = {name: r.detail for name, r in results.items() if not r.ok}
        get_logger("switchboard.health").warning("not ready", failing=failing)
    return HealthResponse(status="ok" if ok else "fail", checks=checks)
