"""Vectors: the chunks of files attached to vector stores, each with its embedding, and how they are searched.

A chunk belongs to one file in one vector store, and to the store's owner: every search is scoped by owner and
store, so no query ever ranks another tenant's text. Attribute filters follow OpenAI's vector-store filters:
comparisons (``eq``, ``ne``, ``gt``, ``gte``, ``lt``, ``lte``, ``in``, ``nin``) on a file's attributes, combined by
``and`` / ``or``.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

AttributeValue = str | float | bool
"""A file attribute's value (OpenAI: string, number or boolean; numbers are floats here)."""


@dataclass(frozen=True, kw_only=True)
class Chunk:
    """One passage of a file in a store: its text, its place in the file and its embedding."""

    id: uuid.UUID
    owner_id: uuid.UUID
    store_id: uuid.UUID
    file_id: uuid.UUID
    position: int  # 0-based order of the chunk in its file
    text: str
    token_count: int
    embedding: tuple[float, ...]
    filename: str = ""
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True)
class ChunkHit:
    """A chunk found by a search, with its score: higher is better, in [0, 1] (the README says how it is made)."""

    chunk: Chunk
    score: float


class ComparisonOperator(enum.StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NIN = "nin"


@dataclass(frozen=True)
class Comparison:
    key: str
    operator: ComparisonOperator
    value: AttributeValue | tuple[AttributeValue, ...]  # a tuple only for ``in`` / ``nin``


class CompoundOperator(enum.StrEnum):
    AND = "and"
    OR = "or"


@dataclass(frozen=True)
class Compound:
    operator: CompoundOperator
    filters: tuple[AttributeFilter, ...]


AttributeFilter = Comparison | Compound


@dataclass(frozen=True, kw_only=True)
class ChunkQuery:
    """A search: the owner's stores, the query's embedding and text (for the full-text half of hybrid ranking)."""

    owner_id: uuid.UUID
    store_ids: Sequence[uuid.UUID]
    embedding: tuple[float, ...]
    text: str
    limit: int = 10
    filter: AttributeFilter | None = None
    score_threshold: float = 0.0
