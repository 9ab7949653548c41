"""The ``file_search`` tool object, as ``/v1/responses`` takes it (OpenAI's shape) and, as Switchboard's extension,
``/v1/chat/completions`` and ``/v1/messages``: ``{"type": "file_search", "vector_store_ids": [...],
"max_num_results": 10, "filters": {...}, "ranking_options": {"score_threshold": 0.2}}``, or the same settings
nested under ``"file_search"`` (chat completions' usual tool shape: ``{"type": "file_search", "file_search":
{...}}``). Pure: body in, domain tool out; and the tool as the response object echoes it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from application.vectors.file_search import FileSearchTool
from application.vectors.search_vector_stores import DEFAULT_RESULTS, MAX_RESULTS, MAX_STORES
from domain.shared.errors import RuleViolation
from domain.vectors.stores import parse_store_id
from interfaces.http.compat.vector_stores_schemas import FilterIn, RankingOptions, filter_of


def _number(value: Any) -> Any:
    """JSON's numbers only: ``"1"`` and ``true`` are no counts (pydantic's lax mode would take them; ``1.0`` stays)."""
    if isinstance(value, str | bool):
        raise ValueError("must be a number")
    return value


Count = Annotated[int, Field(ge=1), BeforeValidator(_number)]
"""A count of at least 1, sent as a JSON number."""


class FileSearchSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    vector_store_ids: list[str] = Field(default_factory=list, max_length=MAX_STORES)
    max_num_results: Count = Field(DEFAULT_RESULTS, ge=1, le=MAX_RESULTS)
    filters: FilterIn | None = None
    ranking_options: RankingOptions | None = None


class FileSearchToolIn(FileSearchSettings):
    type: Literal["file_search"]
    file_search: FileSearchSettings | None = None

    def settings(self) -> FileSearchSettings:
        return self.file_search if self.file_search is not None else self

    def to_domain(self) -> FileSearchTool:
        settings = self.settings()
        if not settings.vector_store_ids:
            raise RuleViolation(f"file_search: vector_store_ids must name between 1 and {MAX_STORES} vector stores")
        return FileSearchTool(
            store_ids=tuple(parse_store_id(i) for i in settings.vector_store_ids),
            max_num_results=settings.max_num_results,
            filter=None if settings.filters is None else filter_of(settings.filters),
            score_threshold=0.0 if settings.ranking_options is None else settings.ranking_options.score_threshold,
        )

    def body(self) -> dict[str, Any]:
        """The tool as the Responses API echoes it."""
        settings = self.settings()
        ranking = settings.ranking_options or RankingOptions.model_validate({})
        return {
            "type": "file_search",
            "vector_store_ids": settings.vector_store_ids,
            "max_num_results": settings.max_num_results,
            "filters": None if settings.filters is None else settings.filters.model_dump(),
            "ranking_options": {"ranker": ranking.ranker or "auto", "score_threshold": ranking.score_threshold},
        }


def file_search_of(tools: list[Any] | None) -> FileSearchTool | None:
    """The request's one ``file_search`` tool in its domain form (two are refused), or ``None``."""
    found = [t for t in tools or [] if isinstance(t, FileSearchToolIn)]
    if len(found) > 1:
        raise RuleViolation("tools: at most one file_search tool")
    return found[0].to_domain() if found else None
