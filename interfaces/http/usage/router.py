from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from application.admin.get_all_usage import GetAllUsage
from application.usage.get_usage import GetUsage, GetUsageCommand
from domain.usage.model import UsageGrouping
from interfaces.container import Container
from interfaces.http.dependencies import provided
from interfaces.http.errors import problem_responses
from interfaces.http.security import ReportingPrincipal
from interfaces.http.usage.schemas import UsageResponse

router = APIRouter(tags=["usage"])

Since = Annotated[AwareDatetime | None, Query(description="From this instant (default: start of the month, UTC).")]
Until = Annotated[AwareDatetime | None, Query(description="Up to this instant, excluded (default: now).")]
Model = Annotated[str | None, Query(max_length=200, description="Only calls asking for this public model.")]
KeyId = Annotated[uuid.UUID | None, Query(description="Only calls made with this API key.")]


@router.get("/usage", responses=problem_responses(401, 403, 422), summary="Your usage, cost and remaining budgets")
async def get_usage(
    principal: ReportingPrincipal,
    since: Since = None,
    until: Until = None,
    model: Model = None,
    api_key_id: KeyId = None,
    group_by: Annotated[
        UsageGrouping | None,
        Query(description="day, model, key or key_owner (operator | user: whose provider key paid)"),
    ] = None,
    use_case: GetUsage = Depends(provided(Container.get_usage)),
) -> UsageResponse:
    command = GetUsageCommand(
        principal=principal, since=since, until=until, model=model, api_key_id=api_key_id, group_by=group_by
    )
    return UsageResponse.of(await use_case.execute(command))


@router.get("/admin/usage", responses=problem_responses(401, 403, 422), summary="Usage across users (admin)")
async def get_all_usage(
    principal: ReportingPrincipal,
    since: Since = None,
    until: Until = None,
    model: Model = None,
    api_key_id: KeyId = None,
    user_id: Annotated[uuid.UUID | None, Query(description="Only this user's calls.")] = None,
    group_by: Annotated[UsageGrouping | None, Query(description="day, model, key, user or key_owner")] = None,
    use_case: GetAllUsage = Depends(provided(Container.get_all_usage)),
) -> UsageResponse:
    command = GetUsageCommand(
        principal=principal,
        since=since,
        until=until,
        model=model,
        api_key_id=api_key_id,
        user_id=user_id,
        group_by=group_by,
    )
    return UsageResponse.of(await use_case.execute(command))
