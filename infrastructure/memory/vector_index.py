"""The vector index in memory: exact cosine search and a word-count text half, fused like every adapter
(``infrastructure.vectors.ranking``). For unit tests and the ``memory://`` backend (one process)."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence

from domain.vectors.model import Chunk, ChunkHit, ChunkQuery
from domain.vectors.ports import VectorIndex
from infrastructure.vectors.filters import matches
from infrastructure.vectors.ranking import all_words, candidates, fuse, query_words

FLOAT32_BYTES = 4


def check_chunks(store_id: uuid.UUID, file_id: uuid.UUID, chunks: Sequence[Chunk]) -> None:
    """Refuses chunks of another store or file, or of one file in several owners' names (a caller's bug)."""
    if any(c.store_id != store_id or c.file_id != file_id for c in chunks):
        raise ValueError("every chunk must belong to the store and the file it is written for")
    if len({c.owner_id for c in chunks}) > 1:
        raise ValueError("the chunks of one file must have one owner")


def chunk_bytes(chunk: Chunk) -> int:
    """What a chunk counts towards a store's usage: its text (UTF-8) and its vector (float32)."""
    return len(chunk.text.encode()) + FLOAT32_BYTES * len(chunk.embedding)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    norms = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return math.fsum(x * y for x, y in zip(a, b, strict=True)) / norms if norms else 0.0


class InMemoryVectorIndex(VectorIndex):
    def __init__(self) -> None:
        self._files: dict[tuple[uuid.UUID, uuid.UUID], tuple[Chunk, ...]] = {}

    async def replace_file(self, store_id: uuid.UUID, file_id: uuid.UUID, chunks: Sequence[Chunk]) -> None:
        check_chunks(store_id, file_id, chunks)
        ordered = tuple(sorted(chunks, key=lambda c: c.position))
        if ordered:
            self._files[(store_id, file_id)] = ordered
        else:
            self._files.pop((store_id, file_id), None)

    async def file_chunks(self, owner_id: uuid.UUID, store_id: uuid.UUID, file_id: uuid.UUID) -> list[Chunk]:
        return [c for c in self._files.get((store_id, file_id), ()) if c.owner_id == owner_id]

    async def search(self, query: ChunkQuery) -> list[ChunkHit]:
        stores = set(query.store_ids)
        visible = {
            c.id: c
            for (store_id, _), chunks in self._files.items()
            if store_id in stores
            for c in chunks
            if c.owner_id == query.owner_id and matches(query.filter, c.attributes)
        }
        wanted = candidates(query.limit)
        nearest = sorted(
            (c for c in visible.values() if len(c.embedding) == len(query.embedding)),
            key=lambda c: (-_cosine(c.embedding, query.embedding), c.id),
        )[:wanted]
        fused = fuse(
            [c.id for c in nearest],
            _text_ranked(visible.values(), query.text)[:wanted],
            threshold=query.score_threshold,
            limit=query.limit,
        )
        return [ChunkHit(visible[f.chunk_id], f.score) for f in fused]

    async def delete_file(self, store_id: uuid.UUID, file_id: uuid.UUID) -> None:
        self._files.pop((store_id, file_id), None)

    async def delete_store(self, store_id: uuid.UUID) -> None:
        for key in [key for key in self._files if key[0] == store_id]:
            del self._files[key]

    async def usage_bytes(self, store_id: uuid.UUID) -> int:
        return sum(chunk_bytes(c) for (s, _), chunks in self._files.items() if s == store_id for c in chunks)

    async def close(self) -> None:
        self._files.clear()


def _text_ranked(chunks: Iterable[Chunk], text: str) -> list[uuid.UUID]:
    """Chunks containing at least one of the query's words: most distinct words first, then most occurrences."""
    words = query_words(text)
    scored = []
    for chunk in chunks:
        counts = Counter(all_words(chunk.text))
        found = [counts[w] for w in words if counts[w]]
        if found:
            scored.append((-len(found), -sum(found), chunk.id))
    return [chunk_id for *_, chunk_id in sorted(scored)]
