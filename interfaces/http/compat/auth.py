"""Authentication as each SDK sends it: ``Authorization: Bearer <key>`` (OpenAI, Anthropic 2.x) or ``x-api-key``."""

from __future__ import annotations

from starlette.requests import Request

from application.auth.authenticate import INVALID_CREDENTIALS
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


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def compat_principal(request: Request) -> Principal:
    """The caller, counted against its requests-per-minute policies (a refusal is a 429 in the API's shape)."""
    headers = request.headers
    credential = credential_of(headers.get("authorization"), headers.get("x-api-key"))
    if credential is None:
        raise Unauthenticated(INVALID_CREDENTIALS)
    container = container_of(request)
    principal = await container.authenticate().execute(credential)
    await enforce_request_rate(request, principal, container.check_request_rate())
    note_principal(principal.user_id, principal.api_key_id)  # every later log line of the request names them
    return principal
