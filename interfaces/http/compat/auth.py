"""Authentication as each SDK sends it: ``Authorization: Bearer <key>`` (OpenAI, Anthropic 2.x) or ``x-api-key``."""

from __future__ import annotations

from typing import Annotated

from dependency_injector.wiring import Provide, inject
from fastapi import Depends, Header, Request

from application.auth.authenticate import INVALID_CREDENTIALS, Authenticate
from application.usage.check_request_rate import CheckRequestRate
from domain.auth.model import Principal
from domain.shared.errors import Unauthenticated
from infrastructure.observability.context import note_principal
from interfaces.container import Container
from interfaces.http.security import enforce_request_rate


def credential_of(authorization: str | None, x_api_key: str | None) -> str | None:
    """An ``x-api-key`` wins over a bearer token, as it does in Anthropic's API."""
    if x_api_key:
        return x_api_key.strip()
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@inject
async def compat_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
    authenticate: Authenticate = Depends(Provide[Container.authenticate]),
    check_rate: CheckRequestRate = Depends(Provide[Container.check_request_rate]),
) -> Principal:
    credential = credential_of(authorization, x_api_key)
    if credential is None:
        raise Unauthenticated(INVALID_CREDENTIALS)
    principal = await authenticate.execute(credential)
    await enforce_request_rate(request, principal, check_rate)
    note_principal(principal.user_id, principal.api_key_id)  # every later log line of the request names them
    return principal


CompatPrincipal = Annotated[Principal, Depends(compat_principal)]
