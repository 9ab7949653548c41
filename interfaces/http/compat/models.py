"""``GET /v1/models`` and ``GET /v1/models/{id}``: OpenAI's list shape, or Anthropic's when the client sends an
``anthropic-version`` header (as Anthropic's SDK does)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from domain.llm.errors import ModelNotFound
from interfaces.http.compat import anthropic_wire, openai_wire
from interfaces.http.compat.auth import compat_principal, container_of
from interfaces.http.compat.errors import JsonResponse


async def list_models(request: Request) -> Response:
    principal = await compat_principal(request)
    models = (await container_of(request).list_models().execute(principal)).models
    wire = openai_wire if request.headers.get("anthropic-version") is None else anthropic_wire
    return JsonResponse(wire.model_list_body(models))


async def get_model(request: Request) -> Response:
    principal = await compat_principal(request)
    spec = await container_of(request).get_model().execute(principal, request.path_params["model_id"])
    if request.headers.get("anthropic-version") is None:
        return JsonResponse(openai_wire.model_body(spec))
    if not anthropic_wire.listed(spec):
        raise ModelNotFound(f"model '{spec.name}' is a {spec.kind} model, not one the Messages API can call")
    return JsonResponse(anthropic_wire.model_body(spec))
