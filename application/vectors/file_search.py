"""``file_search`` for any model: search the caller's vector stores for the question, then give the model the
passages, whichever provider serves it.

The search runs before the model call, with the newest user message as its query (Switchboard's choice, rather
than a tool the model may call: it works the same on every provider, on models that call no tools, and on the
offline ``local`` model, and it costs one model call, so a stream starts as fast as without it). The passages go
in a system message just before that user message (``domain.vectors.citations``); the answer's ``[n]`` markers
become its citations. The query's embedding is a model call of its own (``SearchVectorStores``: metered, budgeted,
rate limited, one usage record of kind embedding). Only the caller's stores are searched: someone else's id is a
404, as on ``/v1/vector_stores``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from application.vectors.search_vector_stores import DEFAULT_RESULTS, Passage, SearchCommand, SearchVectorStores
from domain.auth.model import Principal
from domain.llm.model import CompletionRequest
from domain.shared.errors import RuleViolation
from domain.vectors.citations import FileSearch, Source, search_query, with_context
from domain.vectors.model import AttributeFilter


@dataclass(frozen=True, kw_only=True)
class FileSearchTool:
    """The ``file_search`` tool as a request names it."""

    store_ids: tuple[uuid.UUID, ...]
    max_num_results: int = DEFAULT_RESULTS
    filter: AttributeFilter | None = None
    score_threshold: float = 0.0
    show_results: bool = False  # the passages are shown to the client, not only to the model


@dataclass(frozen=True)
class Grounded:
    request: CompletionRequest  # the request with the passages in it
    search: FileSearch


class FileSearchRetrieval:
    def __init__(self, *, search: SearchVectorStores) -> None:
        self._search = search

    async def ground(
        self, request: CompletionRequest, tool: FileSearchTool, *, principal: Principal, request_id: str = "-"
    ) -> Grounded:
        query = search_query(request.messages)
        if not query:
            raise RuleViolation("file_search: the input needs a user message to search with")
        command = SearchCommand(
            principal=principal,
            store_ids=tool.store_ids,
            queries=(query,),
            filter=tool.filter,
            max_num_results=tool.max_num_results,
            score_threshold=tool.score_threshold,
            request_id=request_id,
        )
        results = await self._search.execute(command)
        search = FileSearch(
            queries=(query,), sources=tuple(_source(p) for p in results.passages), results_shown=tool.show_results
        )
        return Grounded(replace(request, messages=with_context(request.messages, search)), search)


def _source(passage: Passage) -> Source:
    return Source(
        store_id=passage.store_id,
        file_id=passage.file_id,
        filename=passage.filename,
        position=passage.position,
        score=passage.score,
        text=passage.text,
        attributes=dict(passage.attributes),
    )
