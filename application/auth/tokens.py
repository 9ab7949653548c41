"""Issuing a pair of session tokens, shared by log-in and refresh."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from application.unit_of_work import UnitOfWork
from domain.auth.model import RefreshToken, User
from domain.auth.ports import TokenService
from domain.shared.ids import new_id


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds until the access token expires
    token_type: str = "bearer"


async def issue_token_pair(
    uow: UnitOfWork, tokens: TokenService, user: User, *, family_id: uuid.UUID, now: datetime
) -> TokenPair:
    """Stores a new refresh token in ``family_id`` (the caller commits) and signs both tokens."""
    refresh = RefreshToken(
        id=new_id(),
        family_id=family_id,
        user_id=user.id,
        issued_at=now,
        expires_at=now + timedelta(seconds=tokens.refresh_ttl_seconds),
    )
    await uow.refresh_tokens.add(refresh)
    access = tokens.issue_access(user, now, session_id=family_id)  # a log-out of the family revokes it
    return TokenPair(
        access_token=access.token,
        refresh_token=tokens.issue_refresh(refresh).token,
        expires_in=max(0, int((access.expires_at - now).total_seconds())),
    )
