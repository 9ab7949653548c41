"""The vector index on PostgreSQL with pgvector: HNSW (cosine) for the vector half, ``tsvector`` + GIN for the text
half, attribute filters in SQL over JSONB, fused in Python (``ranking``).

Embeddings of any size share one untyped ``vector`` column; revision ``0011_vector_chunks`` indexes each common size
with a partial HNSW index over ``embedding::vector(n)`` (``halfvec`` above 2,000 dimensions). A search casts to the
query's size and says ``dimensions = n`` literally, so the planner can use that size's index; other sizes are
searched exactly. Filtered searches use pgvector's iterative index scans (``hnsw.iterative_scan``), so a filter or a
small store among many does not starve the index scan of results.
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.vectors.errors import VectorIndexUnavailable
from domain.vectors.model import Chunk, ChunkHit, ChunkQuery
from domain.vectors.ports import VectorIndex
from infrastructure.memory.vector_index import check_chunks
from infrastructure.vectors.ranking import candidates, fuse, query_words
from infrastructure.vectors.sql_filters import SqlFilter

HNSW_DIMENSIONS = frozenset((256, 384, 512, 768, 1024, 1536))  # as created by revision 0011_vector_chunks
HALFVEC_DIMENSIONS = frozenset((3072,))
DEFAULT_EF_SEARCH = 64  # recall@10 >= 0.95 at 100,000 chunks from 40 (README, Performance); a floor: at least n
PER_WORD_CANDIDATES = 4  # times the candidates: how many chunks matching one query word the text half ranks at most

UNAVAILABLE = (
    "vector stores need the pgvector extension on this PostgreSQL server, and its database has no vector index: "
    "install pgvector on the server, then create the schema of revision 0011_vector_chunks (see the README)"
)

_COLUMNS = (
    "id, owner_id, store_id, file_id, position, text, token_count, filename, attributes::text AS attributes, "
    "embedding::text AS embedding"
)


def vector_literal(values: Sequence[float]) -> str:
    """pgvector's text form of a vector: each component rounded to float32 (what pgvector keeps), then written
    with 9 significant digits, which read back to that very float32."""
    return "[" + ",".join(f"{v:.9g}" for v in _float32(values)) + "]"


def parse_vector(literal: str) -> tuple[float, ...]:
    """A vector's text form read back as float32 values (as the SQLite adapter returns them)."""
    return _float32([float(v) for v in literal[1:-1].split(",")])


def _float32(values: Sequence[float]) -> tuple[float, ...]:
    """Each value rounded to the nearest float32 (the standard library's packing: numpy stays out of the server's
    memory until the SQLite index needs it)."""
    layout = f"<{len(values)}f"
    return struct.unpack(layout, struct.pack(layout, *values))


def _typed(dimensions: int) -> str:
    """The type a search casts to: the one its size's HNSW index is built on."""
    kind = "halfvec" if dimensions in HALFVEC_DIMENSIONS else "vector"
    return f"{kind}({int(dimensions)})"


def nearest_sql(dimensions: int, scope: str) -> str:
    """The vector half: the ``:n`` nearest chunks in ``scope`` by cosine distance to ``:embedding``.

    The size is an int written into the SQL so that the partial index's predicate is provable at planning; the
    materialized CTE re-sorts what a relaxed-order iterative index scan returns (pgvector's documented pattern).
    """
    typed = _typed(dimensions)
    return (
        "WITH nearest AS MATERIALIZED ("  # noqa: S608 (constants and bound names)
        f"SELECT id, embedding::{typed} <=> CAST(:embedding AS {typed}) AS distance FROM vector_chunks "
        f"WHERE dimensions = {int(dimensions)} AND {scope} ORDER BY distance LIMIT :n"
        ") SELECT id FROM nearest ORDER BY distance + 0, id"
    )


class PgVectorIndex(VectorIndex):
    def __init__(self, engine: AsyncEngine, *, ef_search: int = DEFAULT_EF_SEARCH) -> None:
        self._engine = engine
        self._ef_search = ef_search
        self._available = False

    async def _check(self, connection: AsyncConnection) -> None:
        if self._available:
            return
        found = await connection.execute(text("SELECT to_regclass('vector_chunks') IS NOT NULL"))
        if not found.scalar_one():
            raise VectorIndexUnavailable(UNAVAILABLE)
        self._available = True

    async def replace_file(self, store_id: uuid.UUID, file_id: uuid.UUID, chunks: Sequence[Chunk]) -> None:
        check_chunks(store_id, file_id, chunks)
        async with self._engine.begin() as connection:
            await self._check(connection)
            # Two runs of one ingestion job must not interleave their deletes and inserts.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"vector:{store_id}:{file_id}"}
            )
            await connection.execute(
                text("DELETE FROM vector_chunks WHERE store_id = :store_id AND file_id = :file_id"),
                {"store_id": store_id, "file_id": file_id},
            )
            if chunks:
                await connection.execute(
                    text(
                        "INSERT INTO vector_chunks (id, owner_id, store_id, file_id, position, text, token_count, "
                        "filename, attributes, dimensions, embedding) VALUES (:id, :owner_id, :store_id, :file_id, "
                        ":position, :text, :token_count, :filename, CAST(:attributes AS jsonb), :dimensions, "
                        "CAST(:embedding AS vector))"
                    ),
                    [_row(chunk) for chunk in chunks],
                )

    async def file_chunks(self, owner_id: uuid.UUID, store_id: uuid.UUID, file_id: uuid.UUID) -> list[Chunk]:
        async with self._engine.connect() as connection:
            await self._check(connection)
            rows = await connection.execute(
                text(
                    f"SELECT {_COLUMNS} FROM vector_chunks WHERE owner_id = :owner_id AND store_id = :store_id "  # noqa: S608 (constants and bound names)
                    "AND file_id = :file_id ORDER BY position"
                ),
                {"owner_id": owner_id, "store_id": store_id, "file_id": file_id},
            )
            return [_chunk(row._mapping) for row in rows]

    async def search(self, query: ChunkQuery) -> list[ChunkHit]:
        if not query.store_ids or query.limit <= 0:
            return []
        where = SqlFilter()
        scope = "owner_id = :owner_id AND store_id = ANY(CAST(:store_ids AS uuid[])) AND " + where.sql(query.filter)
        params: dict[str, Any] = {
            "owner_id": query.owner_id,
            "store_ids": list(query.store_ids),
            "n": candidates(query.limit),
            **where.params,
        }
        async with self._engine.begin() as connection:
            await self._check(connection)
            nearest = await self._vector_half(connection, query, scope, params) if query.embedding else []
            matching = await self._text_half(connection, query, scope, params)
            fused = fuse(nearest, matching, threshold=query.score_threshold, limit=query.limit)
            if not fused:
                return []
            rows = await connection.execute(
                text(f"SELECT {_COLUMNS} FROM vector_chunks WHERE id = ANY(CAST(:ids AS uuid[]))"),  # noqa: S608 (constants and bound names)
                {"ids": [f.chunk_id for f in fused]},
            )
            chunks = {chunk.id: chunk for chunk in (_chunk(row._mapping) for row in rows)}
        return [ChunkHit(chunks[f.chunk_id], f.score) for f in fused if f.chunk_id in chunks]

    async def _vector_half(
        self, connection: AsyncConnection, query: ChunkQuery, scope: str, params: dict[str, Any]
    ) -> list[uuid.UUID]:
        dimensions = len(query.embedding)
        await connection.execute(
            text(
                "SELECT set_config('hnsw.ef_search', :ef, true), "
                "set_config('hnsw.iterative_scan', 'relaxed_order', true)"
            ),
            {"ef": str(max(self._ef_search, params["n"]))},
        )
        rows = await connection.execute(
            text(nearest_sql(dimensions, scope)), params | {"embedding": vector_literal(query.embedding)}
        )
        return [uuid.UUID(str(row[0])) for row in rows]

    async def _text_half(
        self, connection: AsyncConnection, query: ChunkQuery, scope: str, params: dict[str, Any]
    ) -> list[uuid.UUID]:
        words = query_words(query.text)
        if not words:
            return []
        # Each word proposes at most ``cap`` chunks it matches (a LIMIT inside the lateral join, so a common word's
        # thousands of matches are never all read); the union is ranked by ts_rank of the whole query (any word,
        # ``|``; \w+ words hold no tsquery syntax; stop words drop out in to_tsquery's parser). A word matching
        # fewer chunks (a name, a code) brings every one of them: only common words are sampled. ts_rank, not
        # ts_rank_cd: a quarter of the time.
        rows = await connection.execute(
            text(
                "WITH proposed AS (SELECT DISTINCT hit.id FROM unnest(CAST(:each AS text[])) AS word "  # noqa: S608 (bound names)
                "CROSS JOIN LATERAL (SELECT id FROM vector_chunks "
                f"WHERE text_search @@ to_tsquery('english', word) AND {scope} LIMIT :cap) AS hit) "
                "SELECT c.id FROM proposed JOIN vector_chunks AS c ON c.id = proposed.id, "
                "to_tsquery('english', :words) AS query "
                "ORDER BY ts_rank(c.text_search, query) DESC, c.id LIMIT :n"
            ),
            params | {"words": " | ".join(words), "each": words, "cap": PER_WORD_CANDIDATES * params["n"]},
        )
        return [uuid.UUID(str(row[0])) for row in rows]

    async def delete_file(self, store_id: uuid.UUID, file_id: uuid.UUID) -> None:
        async with self._engine.begin() as connection:
            await self._check(connection)
            await connection.execute(
                text("DELETE FROM vector_chunks WHERE store_id = :store_id AND file_id = :file_id"),
                {"store_id": store_id, "file_id": file_id},
            )

    async def delete_store(self, store_id: uuid.UUID) -> None:
        async with self._engine.begin() as connection:
            await self._check(connection)
            await connection.execute(
                text("DELETE FROM vector_chunks WHERE store_id = :store_id"), {"store_id": store_id}
            )

    async def usage_bytes(self, store_id: uuid.UUID) -> int:
        async with self._engine.connect() as connection:
            await self._check(connection)
            total = await connection.execute(
                text(
                    "SELECT coalesce(sum(octet_length(text) + 4 * dimensions), 0) FROM vector_chunks "
                    "WHERE store_id = :store_id"
                ),
                {"store_id": store_id},
            )
            return int(total.scalar_one())

    async def close(self) -> None:
        """Nothing of its own to close: the engine's pool is the container's."""


def _row(chunk: Chunk) -> dict[str, Any]:
    return {
        "id": chunk.id,
        "owner_id": chunk.owner_id,
        "store_id": chunk.store_id,
        "file_id": chunk.file_id,
        "position": chunk.position,
        "text": chunk.text,
        "token_count": chunk.token_count,
        "filename": chunk.filename,
        "attributes": json.dumps(dict(chunk.attributes)),
        "dimensions": len(chunk.embedding),
        "embedding": vector_literal(chunk.embedding),
    }


def _chunk(row: Any) -> Chunk:
    return Chunk(
        id=uuid.UUID(str(row["id"])),
        owner_id=uuid.UUID(str(row["owner_id"])),
        store_id=uuid.UUID(str(row["store_id"])),
        file_id=uuid.UUID(str(row["file_id"])),
        position=row["position"],
        text=row["text"],
        token_count=row["token_count"],
        filename=row["filename"],
        attributes=json.loads(row["attributes"]),
        embedding=parse_vector(row["embedding"]),
    )
