from __future__ import annotations

from application.auth.access import require_scope
from domain.auth.model import Principal, Scope
from domain.llm.model import ModelSpec
from domain.llm.ports import ModelCatalog


class ListModels:
    def __init__(self, *, catalog: ModelCatalog) -> None:
        self._catalog = catalog

    async def execute(self, principal: Principal) -> list[ModelSpec]:
        require_scope(principal, Scope.MODELS)
        return self._catalog.list()
