"""Authentication as a dependency: a bearer credential becomes a domain ``Principal``, counted against the caller's
requests-per-minute policies on the way (a refusal is a 429; the policies' states go into the response headers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from application.auth.authenticate import INVALID_CREDENTIALS, Authenticate
from application.usage.check_request_rate import CheckRequestRate
from domain.auth.model import Principal
from domain.shared.errors import Unauthenticated
from domain.usage.errors import LimitExceeded
from infrastructure.observability.context import note_principal
from interfaces.container import Container
from interfaces.http.dependencies import provided
from interfaces.http.rate_limit_headers import remember

bearer = HTTPBearer(
    auto_error=False,
    description="An access token from /api/v1/auth/token, or an API key (`sk-sb-...`).",
)


async def enforce_request_rate(
    request: Request, principal: Principal, check: CheckRequestRate, *, answerable_when_down: bool = False
) -> None:
    """Counts this request against the caller's limits. Every route that authenticates a caller must call it
    (``current_principal`` does); a credential read from another header (``x-api-key``) included."""
    try:
        states = await check.execute(principal, answerable_when_down=answerable_when_down)
    except LimitExceeded as exc:
        remember(request.scope.setdefault("state", {}), exc.states)
        raise
    remember(request.scope.setdefault("state", {}), states)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    authenticate: Authenticate = Depends(provided(Container.authenticate)),
    check_rate: CheckRequestRate = Depends(provided(Container.check_request_rate)),
) -> Principal:
    return await _authenticated(request, credentials, authenticate, check_rate, answerable_when_down=False)


async def _authenticated(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    authenticate: Authenticate,
    check_rate: CheckRequestRate,
    *,
    answerable_when_down: bool,
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(INVALID_CREDENTIALS)
    principal = await authenticate.execute(credentials.credentials)
    await enforce_request_rate(request, principal, check_rate, answerable_when_down=answerable_when_down)
    note_principal(principal.user_id, principal.api_key_id)  # every later log line of the request names them
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def reporting_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    authenticate: Authenticate = Depends(provided(Container.authenticate)),
    check_rate: CheckRequestRate = Depends(provided(Container.check_request_rate)),
) -> Principal:
    """``current_principal`` for the usage reports, which the ledger answers alone: with the rate limiter's Redis
    down they are served (uncounted) in ``closed`` mode too."""
    return await _authenticated(request, credentials, authenticate, check_rate, answerable_when_down=True)


ReportingPrincipal = Annotated[Principal, Depends(reporting_principal)]
