"""Search a caller's vector stores: the one retrieval use case every front door builds on.

``/v1/vector_stores/{id}/search`` calls it with one store; ``file_search`` (in ``/v1/responses``, chat completions
and messages) and conversations that name vector stores call it with theirs and cite its passages: each ``Passage``
carries what a citation needs (the store, the file's id and name, the chunk's position, its score and text).

Every query is embedded through the pipeline (``ModelCall.embed``: metered, budgeted, rate limited, one usage
record), once per embedding model among the stores (a store is searched with the model its chunks were embedded
with). Several queries are searched one by one and merged: a chunk keeps its best score.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from application.llm.model_call import ModelCall
from application.unit_of_work import UnitOfWorkFactory
from application.usage.context import CallContext
from application.vectors.access import live_store, require_vectors_scope
from domain.auth.model import Principal
from domain.files.model import public_file_id
from domain.llm.model import EmbeddingRequest
from domain.shared.clock import Clock
from domain.shared.errors import RuleViolation
from domain.vectors.model import AttributeFilter, AttributeValue, ChunkHit, ChunkQuery
from domain.vectors.ports import VectorIndex
from domain.vectors.stores import VectorStore

MAX_RESULTS = 50  # OpenAI's bound for max_num_results
DEFAULT_RESULTS = 10
MAX_STORES = 10
MAX_QUERIES = 10
ACTIVITY_GRAIN = timedelta(minutes=1)  # ``last_active_at`` is written at most this often by searches


@dataclass(frozen=True, kw_only=True)
class SearchCommand:
    principal: Principal
    store_ids: tuple[uuid.UUID, ...]
    queries: tuple[str, ...]
    filter: AttributeFilter | None = None
    max_num_results: int = DEFAULT_RESULTS
    score_threshold: float = 0.0
    request_id: str = "-"


@dataclass(frozen=True, kw_only=True)
class Passage:
    """One retrieved chunk, with all a citation needs."""

    store_id: uuid.UUID
    file_id: uuid.UUID
    filename: str
    position: int  # the chunk's 0-based place in its file
    score: float  # in [0, 1], higher is better
    text: str
    attributes: dict[str, AttributeValue] = field(default_factory=dict)

    @property
    def public_file_id(self) -> str:
        return public_file_id(self.file_id)


@dataclass(frozen=True)
class SearchResults:
    query: str  # the queries as searched (OpenAI's ``search_query``)
    passages: list[Passage]  # best first


class SearchVectorStores:
    def __init__(self, *, uow: UnitOfWorkFactory, index: VectorIndex, model_call: ModelCall, clock: Clock) -> None:
        self._uow = uow
        self._index = index
        self._model_call = model_call
        self._clock = clock

    async def execute(self, command: SearchCommand) -> SearchResults:
        require_vectors_scope(command.principal)
        queries = _check(command)
        stores = await self._stores(command)
        by_model: dict[str, list[uuid.UUID]] = defaultdict(list)
        for store in stores:
            by_model[store.embedding_model].append(store.id)
        context = CallContext(principal=command.principal, request_id=command.request_id)
        best: dict[uuid.UUID, ChunkHit] = {}
        for model, store_ids in by_model.items():
            embedded = await self._model_call.embed(EmbeddingRequest(model=model, inputs=queries), context)
            for text, vector in zip(queries, embedded.vectors, strict=True):
                query = ChunkQuery(
                    owner_id=command.principal.user_id,
                    store_ids=store_ids,
                    embedding=tuple(vector),
                    text=text,
                    limit=command.max_num_results,
                    filter=command.filter,
                    score_threshold=command.score_threshold,
                )
                for hit in await self._index.search(query):
                    kept = best.get(hit.chunk.id)
                    if kept is None or hit.score > kept.score:
                        best[hit.chunk.id] = hit
        ranked = sorted(best.values(), key=lambda h: (-h.score, h.chunk.file_id, h.chunk.position))
        return SearchResults(" ".join(queries), [_passage(h) for h in ranked[: command.max_num_results]])

    async def _stores(self, command: SearchCommand) -> list[VectorStore]:
        """The caller's live stores (someone else's is a 404), their activity noted."""
        now = self._clock.now()
        async with self._uow() as uow:
            stores = [
                await live_store(uow, i, command.principal.user_id, now) for i in dict.fromkeys(command.store_ids)
            ]
            stale = [s for s in stores if now - s.last_active_at >= ACTIVITY_GRAIN]
            for store in stale:
                store.last_active_at = now
                await uow.vector_stores.update(store)
            if stale:
                await uow.commit()
        return stores


def _check(command: SearchCommand) -> tuple[str, ...]:
    if not 1 <= len(command.store_ids) <= MAX_STORES:
        raise RuleViolation(f"vector_store_ids: between 1 and {MAX_STORES} stores")
    queries = tuple(q for q in command.queries if q.strip())
    if not queries or len(queries) > MAX_QUERIES:
        raise RuleViolation(f"query: between 1 and {MAX_QUERIES} non-blank texts")
    if not 1 <= command.max_num_results <= MAX_RESULTS:
        raise RuleViolation(f"max_num_results: must be between 1 and {MAX_RESULTS}")
    if not 0.0 <= command.score_threshold <= 1.0:
        raise RuleViolation("ranking_options.score_threshold: must be between 0 and 1")
    return queries


def _passage(hit: ChunkHit) -> Passage:
    chunk = hit.chunk
    return Passage(
        store_id=chunk.store_id,
        file_id=chunk.file_id,
        filename=chunk.filename,
        position=chunk.position,
        score=hit.score,
        text=chunk.text,
        attributes=dict(chunk.attributes),
    )
