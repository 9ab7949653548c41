"""Requests of OpenAI's vector stores API, as its SDKs send them, and their domain meaning (pure: body in, command
out). Every bound the use cases check is stated here too, so the ``/v1`` OpenAPI document says it (and the fuzzer
sends nothing valid that is refused); the one rule between two fields JSON Schema cannot state is a static chunking
strategy's overlap of at most half its chunk size.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.vectors.model import (
    AttributeFilter,
    AttributeValue,
    Comparison,
    ComparisonOperator,
    Compound,
    CompoundOperator,
)
from domain.vectors.stores import (
    EXPIRY_ANCHOR,
    MAX_ATTRIBUTE_KEY_LENGTH,
    MAX_ATTRIBUTE_STRING_LENGTH,
    MAX_ATTRIBUTES,
    MAX_DESCRIPTION_LENGTH,
    MAX_EXPIRY_DAYS,
    MAX_FILES_PER_REQUEST,
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_PAIRS,
    MAX_METADATA_VALUE_LENGTH,
    MAX_NAME_LENGTH,
    MIN_EXPIRY_DAYS,
    ChunkingStrategy,
)

MAX_RESULTS = 50
MAX_QUERIES = 10
MAX_FILTER_VALUES = 100


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_METADATA_KEY_LENGTH)]
MetadataValue = Annotated[str, StringConstraints(max_length=MAX_METADATA_VALUE_LENGTH)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=MAX_METADATA_PAIRS)]
AttributeKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ATTRIBUTE_KEY_LENGTH)]
AttributeText = Annotated[str, StringConstraints(max_length=MAX_ATTRIBUTE_STRING_LENGTH)]
Attributes = Annotated[dict[AttributeKey, AttributeText | bool | float], Field(max_length=MAX_ATTRIBUTES)]
FileId = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class StaticChunking(_Lenient):
    max_chunk_size_tokens: int = Field(ge=ChunkingStrategy.MIN_SIZE, le=ChunkingStrategy.MAX_SIZE)
    chunk_overlap_tokens: int = Field(ge=0, le=ChunkingStrategy.MAX_SIZE // 2)


class AutoChunkingStrategy(_Lenient):
    type: Literal["auto"]


class StaticChunkingStrategy(_Lenient):
    type: Literal["static"]
    static: StaticChunking


ChunkingStrategyIn = Annotated[AutoChunkingStrategy | StaticChunkingStrategy, Field(discriminator="type")]


def chunking_of(strategy: ChunkingStrategyIn | None) -> ChunkingStrategy:
    if strategy is None or isinstance(strategy, AutoChunkingStrategy):
        return ChunkingStrategy.auto()
    return ChunkingStrategy.of(strategy.static.max_chunk_size_tokens, strategy.static.chunk_overlap_tokens)


class ExpiresAfter(_Lenient):
    anchor: Literal["last_active_at"] = EXPIRY_ANCHOR  # type: ignore[assignment]
    days: int = Field(ge=MIN_EXPIRY_DAYS, le=MAX_EXPIRY_DAYS)


class CreateVectorStoreRequest(_Lenient):
    name: Annotated[str, StringConstraints(max_length=MAX_NAME_LENGTH)] | None = None
    description: Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_LENGTH)] | None = None
    file_ids: list[FileId] = Field(default_factory=list, max_length=MAX_FILES_PER_REQUEST)
    chunking_strategy: ChunkingStrategyIn | None = None
    metadata: Metadata | None = None
    expires_after: ExpiresAfter | None = None
    embedding_model: str | None = Field(
        None, min_length=1, description="Switchboard's extension: the catalog's embedding model for this store."
    )


class UpdateVectorStoreRequest(_Lenient):
    name: Annotated[str, StringConstraints(max_length=MAX_NAME_LENGTH)] | None = None
    metadata: Metadata | None = None
    expires_after: ExpiresAfter | None = None


class CreateVectorStoreFileRequest(_Lenient):
    file_id: FileId
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategyIn | None = None


class UpdateVectorStoreFileRequest(_Lenient):
    attributes: Attributes | None


class BatchFile(_Lenient):
    file_id: FileId
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategyIn | None = None


class CreateFileBatchRequest(_Lenient):
    file_ids: list[FileId] | None = Field(None, max_length=MAX_FILES_PER_REQUEST)
    files: list[BatchFile] | None = Field(None, max_length=MAX_FILES_PER_REQUEST)
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategyIn | None = None


FilterScalar = Annotated[str, StringConstraints(max_length=MAX_ATTRIBUTE_STRING_LENGTH)] | bool | float


class ComparisonFilter(_Lenient):
    type: Literal["eq", "ne", "gt", "gte", "lt", "lte"]
    key: AttributeKey
    value: FilterScalar


class ListComparisonFilter(_Lenient):
    type: Literal["in", "nin"]
    key: AttributeKey
    value: list[Annotated[str, StringConstraints(max_length=MAX_ATTRIBUTE_STRING_LENGTH)] | float] = Field(
        max_length=MAX_FILTER_VALUES
    )


class CompoundFilter(_Lenient):
    type: Literal["and", "or"]
    filters: list[ComparisonFilter | ListComparisonFilter | CompoundFilter] = Field(min_length=1, max_length=20)


FilterIn = Annotated[ComparisonFilter | ListComparisonFilter | CompoundFilter, Field(discriminator="type")]


def filter_of(node: ComparisonFilter | ListComparisonFilter | CompoundFilter) -> AttributeFilter:
    if isinstance(node, CompoundFilter):
        return Compound(CompoundOperator(node.type), tuple(filter_of(f) for f in node.filters))
    value: AttributeValue | tuple[AttributeValue, ...]
    value = tuple(node.value) if isinstance(node, ListComparisonFilter) else node.value
    return Comparison(node.key, ComparisonOperator(node.type), value)


class RankingOptions(_Lenient):
    ranker: Literal["auto", "default-2024-11-15", "none"] | None = None
    score_threshold: float = Field(0.0, ge=0.0, le=1.0)


Query = Annotated[str, StringConstraints(min_length=1, pattern=r"\S")]  # not blank


class SearchVectorStoreRequest(_Lenient):
    query: Query | Annotated[list[Query], Field(min_length=1, max_length=MAX_QUERIES)]
    filters: FilterIn | None = None
    max_num_results: int = Field(10, ge=1, le=MAX_RESULTS)
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = Field(False, description="Accepted; the query is searched as given (no model rewrites it).")

    def queries(self) -> tuple[str, ...]:
        return (self.query,) if isinstance(self.query, str) else tuple(self.query)
