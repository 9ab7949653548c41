from __future__ import annotations

from dataclasses import dataclass

from application.auth.access import require_scope
from domain.auth.model import Principal, Scope
from domain.llm.model import ModelSpec
from domain.llm.ports import ModelCatalog


@dataclass(frozen=True)
class ModelList:
    models: list[ModelSpec]
    default_model: str


class ListModels:
    def __init__(self, *, catalog: ModelCatalog) -> None:
        self._catalog = catalog

    async def execute(self, principal: Principal) -> ModelList:
        require_scope(principal, Scope.MODELS)
        return ModelList(models=self._catalog.list(), default_model=self._catalog.default_model)
