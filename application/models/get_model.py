from __future__ import annotations

from application.auth.access import require_scope
from domain.auth.model import Principal, Scope
from domain.llm.errors import ModelNotFound
from domain.llm.model import ModelSpec
from domain.llm.ports import ModelCatalog


class GetModel:
    def __init__(self, *, catalog: ModelCatalog) -> None:
        self._catalog = catalog

    async def execute(self, principal: Principal, name: str) -> ModelSpec:
        require_scope(principal, Scope.MODELS)
        spec = self._catalog.find(name)
        if spec is None:
            raise ModelNotFound(f"model '{name}' does not exist")
        return spec
