"""The vector index on the SQLite default: exact cosine search with numpy over each store's vectors, kept in memory
and reloaded when the store changes, and SQLite FTS5 (``bm25``) for the text half, fused in Python (``ranking``).

Chunks live in ``vector_chunks`` (the embedding a little-endian float32 blob) with an external-content FTS5 table
beside it. Every write bumps the store's row in ``vector_store_generations`` in the same transaction, so a search
(in this process or another on the same file) reloads a store whose generation moved. Stores stay cached up to
``cache_bytes`` of vectors, least recently used first out.

Every call runs in a worker thread (``asyncio.to_thread``) on a short-lived ``sqlite3`` connection of its own:
loading a store and the matrix products never block the event loop, and numpy releases the GIL while it computes.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import struct
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domain.vectors.model import AttributeFilter, AttributeValue, Chunk, ChunkHit, ChunkQuery
from domain.vectors.ports import VectorIndex
from infrastructure.db.engine import SQLITE_BUSY_TIMEOUT_MS
from infrastructure.memory.vector_index import check_chunks
from infrastructure.vectors.filters import matches
from infrastructure.vectors.ranking import candidates, fuse, query_words

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

DEFAULT_CACHE_BYTES = 1 << 30
FLOAT32 = "<f4"  # numpy's name of a little-endian float32

_COLUMNS = "id, owner_id, store_id, file_id, position, text, token_count, filename, attributes, embedding"


@dataclass(frozen=True)
class _Slice:
    """One store's chunks of one embedding size: unit-length rows, and what a search filters them on."""

    ids: list[uuid.UUID]
    owners: npt.NDArray[np.int32]  # index into ``owner_ids``
    owner_ids: list[uuid.UUID]
    attributes: npt.NDArray[np.int32]  # index into ``attribute_sets``
    attribute_sets: list[dict[str, AttributeValue]]
    matrix: npt.NDArray[np.float32]


@dataclass(frozen=True)
class _Store:
    generation: int
    slices: dict[int, _Slice]

    @property
    def nbytes(self) -> int:
        return sum(s.matrix.nbytes for s in self.slices.values())


class SqliteVectorIndex(VectorIndex):
    def __init__(self, database: str, *, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._database = database
        self._cache_bytes = cache_bytes
        self._cache: OrderedDict[uuid.UUID, _Store] = OrderedDict()
        self._lock = threading.Lock()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self._database, isolation_level=None, check_same_thread=False)
        try:
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            yield connection
        finally:
            connection.close()

    @contextmanager
    def _write(self, store_id: uuid.UUID) -> Iterator[sqlite3.Connection]:
        """A write transaction that also moves the store's generation (other searches then reload it)."""
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute(
                    "INSERT INTO vector_store_generations (store_id, generation) VALUES (?, 1) "
                    "ON CONFLICT (store_id) DO UPDATE SET generation = generation + 1",
                    (store_id.hex,),
                )
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    async def replace_file(self, store_id: uuid.UUID, file_id: uuid.UUID, chunks: Sequence[Chunk]) -> None:
        check_chunks(store_id, file_id, chunks)
        await asyncio.to_thread(self._replace_file, store_id, file_id, list(chunks))

    def _replace_file(self, store_id: uuid.UUID, file_id: uuid.UUID, chunks: list[Chunk]) -> None:
        with self._write(store_id) as connection:
            connection.execute(
                "DELETE FROM vector_chunks WHERE store_id = ? AND file_id = ?", (store_id.hex, file_id.hex)
            )
            connection.executemany(
                "INSERT INTO vector_chunks (id, owner_id, store_id, file_id, position, text, token_count, filename, "
                "attributes, dimensions, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.id.hex,
                        c.owner_id.hex,
                        c.store_id.hex,
                        c.file_id.hex,
                        c.position,
                        c.text,
                        c.token_count,
                        c.filename,
                        json.dumps(dict(c.attributes)),
                        len(c.embedding),
                        struct.pack(f"<{len(c.embedding)}f", *c.embedding),
                    )
                    for c in chunks
                ],
            )

    async def file_chunks(self, owner_id: uuid.UUID, store_id: uuid.UUID, file_id: uuid.UUID) -> list[Chunk]:
        return await asyncio.to_thread(self._file_chunks, owner_id, store_id, file_id)

    def _file_chunks(self, owner_id: uuid.UUID, store_id: uuid.UUID, file_id: uuid.UUID) -> list[Chunk]:
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM vector_chunks WHERE owner_id = ? AND store_id = ? AND file_id = ? "  # noqa: S608
                "ORDER BY position",
                (owner_id.hex, store_id.hex, file_id.hex),
            )
            return [_chunk(row) for row in rows]

    async def search(self, query: ChunkQuery) -> list[ChunkHit]:
        if not query.store_ids or query.limit <= 0:
            return []
        return await asyncio.to_thread(self._search, query)

    def _search(self, query: ChunkQuery) -> list[ChunkHit]:
        wanted = candidates(query.limit)
        stores = list(dict.fromkeys(query.store_ids))
        with self._connect() as connection:
            nearest = self._vector_half(connection, query, stores, wanted)
            matching = _text_half(connection, query, stores, wanted)
            fused = fuse(nearest, matching, threshold=query.score_threshold, limit=query.limit)
            if not fused:
                return []
            marks = ", ".join("?" * len(fused))
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM vector_chunks WHERE id IN ({marks})",  # noqa: S608 (placeholders only)
                [f.chunk_id.hex for f in fused],
            )
            chunks = {chunk.id: chunk for chunk in map(_chunk, rows)}
        return [ChunkHit(chunks[f.chunk_id], f.score) for f in fused if f.chunk_id in chunks]

    def _vector_half(
        self, connection: sqlite3.Connection, query: ChunkQuery, stores: list[uuid.UUID], wanted: int
    ) -> list[uuid.UUID]:
        import numpy as np  # imported on first use: ~12 MB the server need not hold until a store is searched

        vector = np.asarray(query.embedding, dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        if norm > 0:
            vector /= norm
        scores: list[npt.NDArray[np.float32]] = []
        pieces: list[list[uuid.UUID]] = []
        for store_id in stores:
            piece = self._store(connection, store_id).slices.get(len(vector))
            if piece is None:
                continue
            similarity = piece.matrix @ vector
            similarity[~_visible(piece, query.owner_id, query.filter)] = -np.inf
            scores.append(similarity)
            pieces.append(piece.ids)
        if not scores:
            return []
        similarity = scores[0] if len(scores) == 1 else np.concatenate(scores)
        ids = pieces[0] if len(pieces) == 1 else [i for part in pieces for i in part]  # not copied for one store
        top = min(wanted, int(np.isfinite(similarity).sum()))
        if top == 0:
            return []
        best = np.argpartition(-similarity, top - 1)[:top] if top < len(similarity) else np.arange(len(similarity))
        best = best[np.argsort(-similarity[best], kind="stable")]
        return [ids[i] for i in best[:top]]

    def _store(self, connection: sqlite3.Connection, store_id: uuid.UUID) -> _Store:
        """The store's vectors, from the cache while its generation has not moved."""
        row = connection.execute(
            "SELECT generation FROM vector_store_generations WHERE store_id = ?", (store_id.hex,)
        ).fetchone()
        generation = row[0] if row else 0
        with self._lock:
            cached = self._cache.get(store_id)
            if cached is not None and cached.generation == generation:
                self._cache.move_to_end(store_id)
                return cached
        loaded = _load(connection, store_id)
        with self._lock:
            self._cache[store_id] = loaded
            self._cache.move_to_end(store_id)
            while len(self._cache) > 1 and sum(s.nbytes for s in self._cache.values()) > self._cache_bytes:
                self._cache.popitem(last=False)
        return loaded

    async def delete_file(self, store_id: uuid.UUID, file_id: uuid.UUID) -> None:
        await asyncio.to_thread(self._delete, store_id, file_id)

    async def delete_store(self, store_id: uuid.UUID) -> None:
        await asyncio.to_thread(self._delete, store_id, None)

    def _delete(self, store_id: uuid.UUID, file_id: uuid.UUID | None) -> None:
        with self._write(store_id) as connection:
            if file_id is None:
                connection.execute("DELETE FROM vector_chunks WHERE store_id = ?", (store_id.hex,))
            else:
                connection.execute(
                    "DELETE FROM vector_chunks WHERE store_id = ? AND file_id = ?", (store_id.hex, file_id.hex)
                )

    async def usage_bytes(self, store_id: uuid.UUID) -> int:
        return await asyncio.to_thread(self._usage_bytes, store_id)

    def _usage_bytes(self, store_id: uuid.UUID) -> int:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT coalesce(sum(length(CAST(text AS BLOB)) + 4 * dimensions), 0) FROM vector_chunks "
                "WHERE store_id = ?",
                (store_id.hex,),
            ).fetchone()
            return int(row[0])

    async def close(self) -> None:
        with self._lock:
            self._cache.clear()


def _load(connection: sqlite3.Connection, store_id: uuid.UUID) -> _Store:
    """Reads a store's vectors (and its generation, in the same read transaction) into unit-length matrices."""
    connection.execute("BEGIN")
    try:
        row = connection.execute(
            "SELECT generation FROM vector_store_generations WHERE store_id = ?", (store_id.hex,)
        ).fetchone()
        rows = connection.execute(
            "SELECT id, owner_id, attributes, dimensions, embedding FROM vector_chunks WHERE store_id = ? ORDER BY seq",
            (store_id.hex,),
        ).fetchall()
    finally:
        connection.execute("COMMIT")
    by_size: dict[int, list[tuple[Any, ...]]] = {}
    for chunk in rows:
        by_size.setdefault(chunk[3], []).append(chunk)
    return _Store(generation=row[0] if row else 0, slices={d: _slice(d, part) for d, part in by_size.items()})


def _slice(dimensions: int, rows: list[tuple[Any, ...]]) -> _Slice:
    import numpy as np

    owner_ids: dict[str, int] = {}
    attribute_sets: dict[str, int] = {}
    owners = np.fromiter((owner_ids.setdefault(r[1], len(owner_ids)) for r in rows), np.int32, len(rows))
    attributes = np.fromiter((attribute_sets.setdefault(r[2], len(attribute_sets)) for r in rows), np.int32, len(rows))
    matrix = np.frombuffer(b"".join(r[4] for r in rows), dtype=FLOAT32).reshape(len(rows), dimensions)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0).astype(np.float32)
    return _Slice(
        ids=[uuid.UUID(r[0]) for r in rows],
        owners=owners,
        owner_ids=[uuid.UUID(o) for o in owner_ids],
        attributes=attributes,
        attribute_sets=[json.loads(a) for a in attribute_sets],
        matrix=matrix,
    )


def _visible(piece: _Slice, owner_id: uuid.UUID, attribute_filter: AttributeFilter | None) -> npt.NDArray[np.bool_]:
    """Which rows the query may see: the owner's, passing the filter (evaluated once per distinct attribute set)."""
    import numpy as np

    owned = np.array([o == owner_id for o in piece.owner_ids], dtype=bool)[piece.owners]
    passing = np.array([matches(attribute_filter, a) for a in piece.attribute_sets], dtype=bool)
    visible: npt.NDArray[np.bool_] = owned & passing[piece.attributes]
    return visible


def _text_half(
    connection: sqlite3.Connection, query: ChunkQuery, stores: list[uuid.UUID], wanted: int
) -> list[uuid.UUID]:
    """FTS5 matches of any query word, best ``bm25`` first, scoped and filtered until ``wanted`` pass.

    FTS5 ranks in C and keeps only the best ``ORDER BY rank LIMIT k`` (its fast path), so the thousands of matches
    of a common word are never all joined and sorted here; ``k`` doubles while too few of them are in scope (another
    owner's, another store's, filtered out)."""
    words = query_words(query.text)
    if not words:
        return []
    match = " OR ".join(f'"{w}"' for w in words)
    scope = [query.owner_id.hex, *(s.hex for s in stores)]
    seen, k = 0, 4 * wanted
    found: list[uuid.UUID] = []
    while True:
        rows = connection.execute(
            "SELECT c.id, c.owner_id, c.store_id, c.attributes FROM (SELECT rowid, rank FROM vector_chunks_fts "
            "WHERE vector_chunks_fts MATCH ? ORDER BY rank LIMIT ? OFFSET ?) AS hit "
            "JOIN vector_chunks AS c ON c.seq = hit.rowid ORDER BY hit.rank, c.id",
            [match, k - seen, seen],
        ).fetchall()
        for chunk_id, owner_id, store_id, attributes in rows:
            if owner_id != scope[0] or store_id not in scope[1:]:
                continue
            if query.filter is None or matches(query.filter, json.loads(attributes)):
                found.append(uuid.UUID(chunk_id))
                if len(found) == wanted:
                    return found
        if len(rows) < k - seen:
            return found
        seen, k = k, 2 * k


def _chunk(row: tuple[Any, ...]) -> Chunk:
    chunk_id, owner_id, store_id, file_id, position, text, token_count, filename, attributes, embedding = row
    return Chunk(
        id=uuid.UUID(chunk_id),
        owner_id=uuid.UUID(owner_id),
        store_id=uuid.UUID(store_id),
        file_id=uuid.UUID(file_id),
        position=position,
        text=text,
        token_count=token_count,
        filename=filename,
        attributes=json.loads(attributes),
        embedding=struct.unpack(f"<{len(embedding) // 4}f", embedding),
    )
