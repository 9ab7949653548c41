"""Authentication as each SDK sends it: ``Authorization: Bearer <key>`` (OpenAI, Anthropic 2.x) or ``x-api-key``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial, wraps

from starlette.requests import Request
from starlette.responses import Response

from application.auth.authenticate import INVALID_CREDENTIALS
from application.usage.request_admission import RequestAdmission, defer
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
    count = partial(enforce_request_rate, request, principal, container.check_request_rate())
    if request.scope.get(COUNT_WITH_MODEL_CALL):
        request.scope[DEFERRED_COUNT] = admission = RequestAdmission(count)
        defer(admission)  # made by the model call's admission, in its round trip
    else:
        await count()
    note_principal(principal.user_id, principal.api_key_id)  # every later log line of the request names them
    return principal


COUNT_WITH_MODEL_CALL = "switchboard.count_with_model_call"
DEFERRED_COUNT = "switchboard.deferred_count"
Endpoint = Callable[[Request], Awaitable[Response]]


def counted_with_model_call(endpoint: Endpoint) -> Endpoint:
    """For a route answered by a model call: the request's requests-per-minute count is left to that call's
    admission, which makes it at once with the budgets' hold and the token admission (one Redis round trip where
    there were two). When the request ends without a model call having made it (a body refused, an idempotent
    replay, a background response, an answer from the cache without a meter), it is made here, so every request is
    counted, and a refused one answers 429 whatever else it would have answered."""

    @wraps(endpoint)
    async def counted(request: Request) -> Response:
        request.scope[COUNT_WITH_MODEL_CALL] = True
        try:
            return await endpoint(request)
        finally:
            admission: RequestAdmission | None = request.scope.get(DEFERRED_COUNT)
            if admission is not None:
                await admission.make()

    return counted
