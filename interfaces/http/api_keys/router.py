from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, status

from application.admin.update_api_key import UpdateApiKey, UpdateApiKeyCommand
from application.auth.create_api_key import CreateApiKey, CreateApiKeyCommand
from application.auth.list_api_keys import ListApiKeys
from application.auth.revoke_api_key import RevokeApiKey, RevokeApiKeyCommand
from interfaces.container import Container
from interfaces.http.api_keys.schemas import (
    ApiKeyListResponse,
    ApiKeyResponse,
    CreateApiKeyRequest,
    CreatedApiKeyResponse,
    UpdateApiKeyRequest,
)
from interfaces.http.dependencies import provided
from interfaces.http.errors import problem_responses
from interfaces.http.security import CurrentPrincipal

router = APIRouter(prefix="/api-keys", tags=["api-keys"])
admin_router = APIRouter(prefix="/admin/api-keys", tags=["api-keys"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 401, 403, 413, 422),
    summary="Create a key",
)
async def create_api_key(
    body: CreateApiKeyRequest,
    principal: CurrentPrincipal,
    use_case: CreateApiKey = Depends(provided(Container.create_api_key)),
) -> CreatedApiKeyResponse:
    command = CreateApiKeyCommand(
        principal=principal, name=body.name, scopes=frozenset(body.scopes), expires_at=body.expires_at
    )
    created = await use_case.execute(command)
    return CreatedApiKeyResponse(**ApiKeyResponse.of(created.key).model_dump(), key=created.plaintext)


@router.get("", responses=problem_responses(401, 403), summary="List the caller's keys")
async def list_api_keys(
    principal: CurrentPrincipal, use_case: ListApiKeys = Depends(provided(Container.list_api_keys))
) -> ApiKeyListResponse:
    return ApiKeyListResponse(items=[ApiKeyResponse.of(k) for k in await use_case.execute(principal)])


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
    summary="Revoke a key",
)
async def revoke_api_key(
    key_id: uuid.UUID,
    principal: CurrentPrincipal,
    use_case: RevokeApiKey = Depends(provided(Container.revoke_api_key)),
) -> None:
    await use_case.execute(RevokeApiKeyCommand(principal=principal, key_id=key_id))


@admin_router.patch(
    "/{key_id}",
    responses=problem_responses(400, 401, 403, 404, 413, 422),
    summary="Set a key's budget and rate limits (admin; an owner cannot raise their own)",
)
async def update_api_key(
    key_id: uuid.UUID,
    body: UpdateApiKeyRequest,
    principal: CurrentPrincipal,
    use_case: UpdateApiKey = Depends(provided(Container.update_api_key)),
) -> ApiKeyResponse:
    command = UpdateApiKeyCommand(principal=principal, key_id=key_id, limits=body.limits_patch())
    return ApiKeyResponse.of(await use_case.execute(command))
