from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from domain.auth.model import Role, User
from interfaces.http.limits import LimitsPatchFields, LimitsResponse


class UserResponse(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime
    limits: LimitsResponse

    @classmethod
    def of(cls, user: User) -> UserResponse:
        return cls(
            id=user.id,
            email=user.email,
            role=user.role,
            is_active=user.is_active,
            created_at=user.created_at,
            updated_at=user.updated_at,
            limits=LimitsResponse.of(user.limits),
        )


class UserListResponse(BaseModel):
    items: list[UserResponse]
    total: int
    limit: int
    offset: int


class UpdateUserRequest(LimitsPatchFields):
    role: Role | None = None
    is_active: bool | None = None
