from __future__ import annotations

from fastapi import APIRouter, Depends

from application.models.list_models import ListModels
from interfaces.container import Container
from interfaces.http.dependencies import provided
from interfaces.http.errors import problem_responses
from interfaces.http.models.schemas import ModelListResponse, ModelResponse
from interfaces.http.security import CurrentPrincipal

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", responses=problem_responses(401, 403), summary="The configured models")
async def list_models(
    principal: CurrentPrincipal, use_case: ListModels = Depends(provided(Container.list_models))
) -> ModelListResponse:
    result = await use_case.execute(principal)
    return ModelListResponse(items=[ModelResponse.of(s) for s in result.models], default_model=result.default_model)
