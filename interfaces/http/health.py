"""Liveness and readiness probes."""

from __future__ import annotations

import uuid

from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from application.unit_of_work import UnitOfWorkFactory
from interfaces.container import Container

router = APIRouter(prefix="/health", tags=["health"])


class CheckResult(BaseModel):
    status: str
    detail: str | None = None


class HealthResponse(BaseModel):
    status: str
    checks: dict[str, CheckResult]


@router.get("/live", summary="The process is up")
async def live() -> HealthResponse:
    return HealthResponse(status="ok", checks={})


@router.get("/ready", summary="Dependencies are reachable", responses={503: {"model": HealthResponse}})
@inject
async def ready(response: Response, uow: UnitOfWorkFactory = Depends(Provide[Container.uow])) -> HealthResponse:
    checks: dict[str, CheckResult] = {}
    try:
        async with uow() as unit:
            await unit.users.find(uuid.UUID(int=0))
        checks["database"] = CheckResult(status="ok")
    except Exception:  # any failure means not ready; the reason is for operators, not clients
        checks["database"] = CheckResult(status="fail", detail="database unreachable")
    ok = all(c.status == "ok" for c in checks.values())
    response.status_code = 200 if ok else 503
    return HealthResponse(status="ok" if ok else "fail", checks=checks)
