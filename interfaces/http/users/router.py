from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from application.admin.list_users import ListUsers, ListUsersCommand
from application.admin.update_user import UpdateUser, UpdateUserCommand
from application.auth.get_current_user import GetCurrentUser
from interfaces.container import Container
from interfaces.http.context import request_id_var
from interfaces.http.dependencies import provided
from interfaces.http.errors import problem_responses
from interfaces.http.security import CurrentPrincipal
from interfaces.http.users.schemas import UpdateUserRequest, UserListResponse, UserResponse

router = APIRouter(tags=["users"])


@router.get("/users/me", responses=problem_responses(401), summary="The caller's account")
async def me(
    principal: CurrentPrincipal, use_case: GetCurrentUser = Depends(provided(Container.get_current_user))
) -> UserResponse:
    return UserResponse.of(await use_case.execute(principal))


@router.get("/admin/users", responses=problem_responses(401, 403, 422), summary="List users (admin)")
async def list_users(
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    use_case: ListUsers = Depends(provided(Container.list_users)),
) -> UserListResponse:
    page = await use_case.execute(ListUsersCommand(principal=principal, limit=limit, offset=offset))
    return UserListResponse(
        items=[UserResponse.of(u) for u in page.items], total=page.total, limit=limit, offset=offset
    )


@router.patch(
    "/admin/users/{user_id}",
    responses=problem_responses(400, 401, 403, 404, 413, 422),
    summary="Change a user's role, budget or rate limits, or deactivate them (admin)",
)
async def update_user(
    user_id: uuid.UUID,
    body: UpdateUserRequest,
    principal: CurrentPrincipal,
    use_case: UpdateUser = Depends(provided(Container.update_user)),
) -> UserResponse:
    command = UpdateUserCommand(
        principal=principal,
        user_id=user_id,
        role=body.role,
        is_active=body.is_active,
        limits=body.limits_patch(),
        request_id=request_id_var.get(),
    )
    return UserResponse.of(await use_case.execute(command))
