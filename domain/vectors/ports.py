"""The port of the vector index: where chunks and their embeddings are kept and searched.

Adapters: pgvector on PostgreSQL (an HNSW index, cosine distance, full-text search beside it), an embedded index on
the SQLite default, and an in-memory one for unit tests; one contract suite runs on all of them. The index is not
part of the unit of work: ingestion writes a file's chunks with ``replace_file`` (idempotent, so a job run twice
leaves the same chunks), then records the file as completed in a unit of work.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Sequence

from domain.vectors.model import Chunk, ChunkHit, ChunkQuery


class VectorIndex(abc.ABC):
    @abc.abstractmethod
    async def replace_file(self, store_id: uuid.UUID, file_id: uuid.UUID, chunks: Sequence[Chunk]) -> None:
        """Makes ``chunks`` the file's chunks in the store, replacing any it had (atomically where the store can)."""

    @abc.abstractmethod
    async def file_chunks(self, owner_id: uuid.UUID, store_id: uuid.UUID, file_id: uuid.UUID) -> list[Chunk]:
        """The file's chunks in the store, in order; empty for a file or store that is not the owner's."""

    @abc.abstractmethod
    async def search(self, query: ChunkQuery) -> list[ChunkHit]:
        """The best ``query.limit`` chunks of the owner's stores, best first, above the threshold, filtered."""

    @abc.abstractmethod
    async def delete_file(self, store_id: uuid.UUID, file_id: uuid.UUID) -> None:
        """Deletes the file's chunks in the store; deleting what is not there is not an error."""

    @abc.abstractmethod
    async def delete_store(self, store_id: uuid.UUID) -> None:
        """Deletes every chunk of the store."""

    @abc.abstractmethod
    async def usage_bytes(self, store_id: uuid.UUID) -> int:
        """The bytes the store's chunks take (text and vectors), for ``usage_bytes``."""
