from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.auth.model import ApiKey, Scope
from interfaces.http.limits import LimitsPatchFields, LimitsResponse


class CreateApiKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(default_factory=lambda: [Scope.CHAT, Scope.MODELS], min_length=1, max_length=len(Scope))
    expires_at: AwareDatetime | None = Field(None, description="Optional expiry, with a timezone.")


class ApiKeyResponse(BaseModel):
    id: uuid.UUID
    name: str
    scopes: list[Scope]
    prefix: str = Field(description="The first characters of the key, to recognise it.")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    limits: LimitsResponse = Field(description="Set by an administrator; the remaining budget is on /usage.")

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyResponse:
        return cls(
            id=key.id,
            name=key.name,
            scopes=sorted(key.scopes),
            prefix=key.prefix,
            created_at=key.created_at,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
            limits=LimitsResponse.of(key.limits),
        )


class CreatedApiKeyResponse(ApiKeyResponse):
    key: str = Field(description="The full key. It is shown this once and never again.")


class ApiKeyListResponse(BaseModel):
    items: list[ApiKeyResponse]


class UpdateApiKeyRequest(LimitsPatchFields):
    """An administrator's change of a key's budget and rate limits."""
