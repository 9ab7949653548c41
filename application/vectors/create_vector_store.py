"""Create a vector store, with the files to put in it: the store, its files and their ingestion jobs in one commit."""

from __future__ import annotations

from dataclasses import dataclass, field

from application.unit_of_work import UnitOfWorkFactory
from application.vectors.access import StoreView, require_vectors_scope, view
from application.vectors.attach import attach
from domain.auth.model import Principal
from domain.llm.model import ModelKind
from domain.llm.ports import ModelCatalog
from domain.shared.clock import Clock
from domain.shared.errors import RuleViolation
from domain.shared.ids import new_id
from domain.vectors.stores import (
    MAX_DESCRIPTION_LENGTH,
    MAX_FILES_PER_REQUEST,
    MAX_NAME_LENGTH,
    ChunkingStrategy,
    VectorStore,
    check_expiry_days,
    check_metadata,
)


@dataclass(frozen=True, kw_only=True)
class CreateVectorStoreCommand:
    principal: Principal
    name: str | None = None
    description: str | None = None
    file_ids: tuple[str, ...] = ()
    chunking: ChunkingStrategy = field(default_factory=ChunkingStrategy.auto)
    metadata: dict[str, str] = field(default_factory=dict)
    expires_after_days: int | None = None
    embedding_model: str | None = None  # an extension: the catalog's embedding model; None: the configured default


class CreateVectorStore:
    def __init__(self, *, uow: UnitOfWorkFactory, catalog: ModelCatalog, clock: Clock, default_model: str) -> None:
        self._uow = uow
        self._catalog = catalog
        self._clock = clock
        self._default_model = default_model

    async def execute(self, command: CreateVectorStoreCommand) -> StoreView:
        require_vectors_scope(command.principal)
        if len(command.file_ids) > MAX_FILES_PER_REQUEST:
            raise RuleViolation(f"file_ids: at most {MAX_FILES_PER_REQUEST} files")
        now = self._clock.now()
        store = VectorStore(
            id=new_id(),
            owner_id=command.principal.user_id,
            name=check_name(command.name or ""),
            description=check_description(command.description),
            embedding_model=self._model(command.embedding_model or self._default_model),
            created_at=now,
            last_active_at=now,
            metadata=check_metadata(command.metadata),
            expires_after_days=check_expiry_days(command.expires_after_days),
        )
        async with self._uow() as uow:
            await uow.vector_stores.add(store)
            for file_id in dict.fromkeys(command.file_ids):
                await attach(
                    uow,
                    principal=command.principal,
                    store=store,
                    file_id=file_id,
                    chunking=command.chunking,
                    attributes=None,
                    now=now,
                )
            shown = await view(uow, store, now)
            await uow.commit()
        return shown

    def _model(self, name: str) -> str:
        spec = self._catalog.find(name)
        if spec is None or spec.kind is not ModelKind.EMBEDDING:
            raise RuleViolation(f"embedding_model: '{name[:100]}' is not an embedding model of this gateway")
        return spec.name


def check_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise RuleViolation(f"description: at most {MAX_DESCRIPTION_LENGTH} characters")
    return description


def check_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH:
        raise RuleViolation(f"name: at most {MAX_NAME_LENGTH} characters")
    return name
