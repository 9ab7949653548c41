from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from application.batches.list_batches import MAX_LIMIT, ListBatches, ListBatchesQuery
from interfaces.container import Container
from interfaces.http.batches.schemas import BatchPageResponse
from interfaces.http.dependencies import provided
from interfaces.http.errors import problem_responses
from interfaces.http.security import CurrentPrincipal

router = APIRouter(tags=["batches"])


@router.get(
    "/batches",
    responses=problem_responses(401, 403, 404, 422),
    summary="Your batches of every kind, newest first, with their progress (admins: everyone's with all=true)",
)
async def list_batches(
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    after: Annotated[uuid.UUID | None, Query(description="The `next_after` of the previous page.")] = None,
    all_users: Annotated[bool, Query(alias="all", description="Every user's batches (administrators only).")] = False,
    use_case: ListBatches = Depends(provided(Container.list_batches)),
) -> BatchPageResponse:
    query = ListBatchesQuery(principal=principal, limit=limit, after=after, kind=None, all_users=all_users)
    return BatchPageResponse.of(await use_case.execute(query))
