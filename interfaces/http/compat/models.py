"""``GET /v1/models`` and ``GET /v1/models/{id}``: OpenAI's list shape, or Anthropic's when the client sends an
``anthropic-version`` header (as Anthropic's SDK does)."""

from __future__ import annotations

from typing import Annotated

from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends, Header

from application.models.get_model import GetModel
from application.models.list_models import ListModels
from interfaces.container import Container
from interfaces.http.compat import anthropic_wire, openai_wire
from interfaces.http.compat.auth import CompatPrincipal
from interfaces.http.compat.errors import JsonResponse

router = APIRouter(prefix="/models", tags=["models"])
AnthropicVersion = Annotated[str | None, Header()]


@router.get("", summary="The catalog's models")
@inject
async def list_models(
    principal: CompatPrincipal,
    anthropic_version: AnthropicVersion = None,
    use_case: ListModels = Depends(Provide[Container.list_models]),
) -> JsonResponse:
    models = (await use_case.execute(principal)).models
    wire = openai_wire if anthropic_version is None else anthropic_wire
    return JsonResponse(wire.model_list_body(models))


@router.get("/{model_id:path}", summary="One model of the catalog")
@inject
async def get_model(
    model_id: str,
    principal: CompatPrincipal,
    anthropic_version: AnthropicVersion = None,
    use_case: GetModel = Depends(Provide[Container.get_model]),
) -> JsonResponse:
    spec = await use_case.execute(principal, model_id)
    wire = openai_wire if anthropic_version is None else anthropic_wire
    return JsonResponse(wire.model_body(spec))
