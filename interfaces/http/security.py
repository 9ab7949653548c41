"""Authentication as a dependency: a bearer credential becomes a domain ``Principal``."""

from __future__ import annotations

from typing import Annotated

from dependency_injector.wiring import Provide, inject
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from application.auth.authenticate import INVALID_CREDENTIALS, Authenticate
from domain.auth.model import Principal
from domain.shared.errors import Unauthenticated
from infrastructure.observability.context import note_principal
from interfaces.container import Container

bearer = HTTPBearer(
    auto_error=False,
    description="An access token from /api/v1/auth/token, or an API key (`sk-sb-...`).",
)


@inject
async def current_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    authenticate: Authenticate = Depends(Provide[Container.authenticate]),
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(INVALID_CREDENTIALS)
    principal = await authenticate.execute(credentials.credentials)
    note_principal(principal.user_id, principal.api_key_id)  # every later log line of the request names them
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
