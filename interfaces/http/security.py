"""Authentication as a dependency: a bearer credential becomes a domain ``Principal``."""

from __future__ import annotations

from typing import Annotated

from dependency_injector.wiring import Provide, inject
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from application.auth.authenticate import INVALID_CREDENTIALS, Authenticate
from domain.auth.model import Principal
from domain.shared.errors import Unauthenticated
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
    return await authenticate.execute(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
