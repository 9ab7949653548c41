"""``/api/v1/provider-credentials``: a user's own keys for providers; ``/api/v1/admin/users/{id}/provider-credentials``:
the same for an administrator acting for a user. The key goes in once (``PUT``) and is never shown again."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from application.credentials.delete_provider_credential import (
    DeleteProviderCredential,
    DeleteProviderCredentialCommand,
)
from application.credentials.list_provider_credentials import (
    ListProviderCredentials,
    ListProviderCredentialsQuery,
)
from application.credentials.put_provider_credential import (
    PutProviderCredential,
    PutProviderCredentialCommand,
)
from domain.auth.model import Principal
from interfaces.container import Container
from interfaces.http.dependencies import provided
from interfaces.http.errors import problem_responses
from interfaces.http.provider_credentials.schemas import (
    ProviderCredentialListResponse,
    ProviderCredentialResponse,
    PutProviderCredentialRequest,
)
from interfaces.http.security import CurrentPrincipal

router = APIRouter(prefix="/provider-credentials", tags=["provider-credentials"])
admin_router = APIRouter(prefix="/admin/users/{user_id}/provider-credentials", tags=["provider-credentials"])

ProviderName = Annotated[str, Path(max_length=64, description="The catalog's provider name: openai, anthropic, …")]
Listing = Annotated[ListProviderCredentials, Depends(provided(Container.list_provider_credentials))]
Putting = Annotated[PutProviderCredential, Depends(provided(Container.put_provider_credential))]
Deleting = Annotated[DeleteProviderCredential, Depends(provided(Container.delete_provider_credential))]
PUT_ERRORS = problem_responses(400, 401, 403, 404, 409, 413, 422, 502, 503, 504)


async def _list(
    use_case: ListProviderCredentials, principal: Principal, user_id: uuid.UUID | None
) -> list[ProviderCredentialResponse]:
    found = await use_case.execute(ListProviderCredentialsQuery(principal=principal, user_id=user_id))
    return [ProviderCredentialResponse.of(c) for c in found]


async def _one(
    use_case: ListProviderCredentials, principal: Principal, provider: str, user_id: uuid.UUID | None
) -> ProviderCredentialResponse:
    query = ListProviderCredentialsQuery(principal=principal, user_id=user_id, provider=provider)
    return ProviderCredentialResponse.of((await use_case.execute(query))[0])


async def _put(
    use_case: PutProviderCredential,
    principal: Principal,
    provider: str,
    body: PutProviderCredentialRequest,
    response: Response,
    user_id: uuid.UUID | None,
) -> ProviderCredentialResponse:
    secret = body.api_key.get_secret_value()
    command = PutProviderCredentialCommand(principal=principal, provider=provider, secret=secret, user_id=user_id)
    result = await use_case.execute(command)
    response.status_code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    return ProviderCredentialResponse.of(result.credential)


@router.get("", responses=problem_responses(401, 403), summary="List your provider keys (hints only)")
async def list_credentials(principal: CurrentPrincipal, use_case: Listing) -> ProviderCredentialListResponse:
    return ProviderCredentialListResponse(items=await _list(use_case, principal, None))


@router.get(
    "/{provider}", responses=problem_responses(401, 403, 404, 422), summary="Your key for a provider (hint only)"
)
async def get_credential(
    provider: ProviderName, principal: CurrentPrincipal, use_case: Listing
) -> ProviderCredentialResponse:
    return await _one(use_case, principal, provider, None)


@router.put(
    "/{provider}",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "An existing key was replaced"}, **PUT_ERRORS},
    summary="Store or replace your key for a provider (checked with the provider first)",
)
async def put_credential(
    provider: ProviderName,
    body: PutProviderCredentialRequest,
    principal: CurrentPrincipal,
    response: Response,
    use_case: Putting,
) -> ProviderCredentialResponse:
    return await _put(use_case, principal, provider, body, response, None)


@router.delete(
    "/{provider}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
    summary="Delete your key for a provider (your calls use the operator's again)",
)
async def delete_credential(provider: ProviderName, principal: CurrentPrincipal, use_case: Deleting) -> None:
    await use_case.execute(DeleteProviderCredentialCommand(principal=principal, provider=provider))


@admin_router.get(
    "", responses=problem_responses(401, 403, 404, 422), summary="A user's provider keys (admin; hints only)"
)
async def admin_list_credentials(
    user_id: uuid.UUID, principal: CurrentPrincipal, use_case: Listing
) -> ProviderCredentialListResponse:
    return ProviderCredentialListResponse(items=await _list(use_case, principal, user_id))


@admin_router.get(
    "/{provider}", responses=problem_responses(401, 403, 404, 422), summary="A user's key (admin; hint only)"
)
async def admin_get_credential(
    user_id: uuid.UUID, provider: ProviderName, principal: CurrentPrincipal, use_case: Listing
) -> ProviderCredentialResponse:
    return await _one(use_case, principal, provider, user_id)


@admin_router.put(
    "/{provider}",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "An existing key was replaced"}, **PUT_ERRORS},
    summary="Store or replace a user's key for a provider (admin)",
)
async def admin_put_credential(
    user_id: uuid.UUID,
    provider: ProviderName,
    body: PutProviderCredentialRequest,
    principal: CurrentPrincipal,
    response: Response,
    use_case: Putting,
) -> ProviderCredentialResponse:
    return await _put(use_case, principal, provider, body, response, user_id)


@admin_router.delete(
    "/{provider}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
    summary="Delete a user's key for a provider (admin)",
)
async def admin_delete_credential(
    user_id: uuid.UUID, provider: ProviderName, principal: CurrentPrincipal, use_case: Deleting
) -> None:
    command = DeleteProviderCredentialCommand(principal=principal, provider=provider, user_id=user_id)
    await use_case.execute(command)
