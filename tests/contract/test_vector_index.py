"""The vector index behaves the same on every adapter: in memory, embedded on SQLite, pgvector on PostgreSQL.

Scores are reciprocal rank fusion of the vector and the text half (``infrastructure.vectors.ranking``), so a chunk's
score follows from its two ranks: these tests build corpora whose ranks are unambiguous and check the exact scores.
Embeddings use values exactly representable as float32 (the stores keep float32).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from domain.vectors.model import (
    AttributeFilter,
    AttributeValue,
    Chunk,
    ChunkQuery,
    Comparison,
    ComparisonOperator,
    Compound,
    CompoundOperator,
)
from domain.vectors.ports import VectorIndex
from infrastructure.vectors.ranking import RRF_K

pytestmark = pytest.mark.contract

DIMS = 4
NOTHING = "qqqq"  # a query text no chunk contains: only the vector half ranks


def rrf(vector_rank: int | None, text_rank: int | None = None) -> float:
    terms = [1 / (RRF_K + r) for r in (vector_rank, text_rank) if r is not None]
    return (RRF_K + 1) / 2 * sum(terms)


def direction(i: int, dims: int = DIMS) -> tuple[float, ...]:
    """Unit-ish vectors whose cosine with ``(1, 0, 0, ...)`` falls as ``i`` grows (exact in float32)."""
    return (1.0, i * 0.25, *([0.0] * (dims - 2)))


QUERY = (1.0, 0.0, 0.0, 0.0)


def a_chunk(
    owner_id: uuid.UUID,
    store_id: uuid.UUID,
    file_id: uuid.UUID,
    position: int = 0,
    *,
    text: str = "plain words",
    embedding: tuple[float, ...] = QUERY,
    attributes: dict[str, AttributeValue] | None = None,
) -> Chunk:
    return Chunk(
        id=uuid.uuid4(),
        owner_id=owner_id,
        store_id=store_id,
        file_id=file_id,
        position=position,
        text=text,
        token_count=len(text.split()),
        embedding=embedding,
        filename=f"file-{file_id.hex[:6]}.txt",
        attributes=attributes or {},
    )


def query(owner_id: uuid.UUID, stores: Sequence[uuid.UUID], **overrides: Any) -> ChunkQuery:
    values: dict[str, Any] = {
        "owner_id": owner_id,
        "store_ids": list(stores),
        "embedding": QUERY,
        "text": NOTHING,
        "limit": 10,
    }
    return ChunkQuery(**(values | overrides))


class Corpus:
    """One owner's store with one chunk per file, the i-th chunk's cosine to ``QUERY`` falling with ``i``."""

    def __init__(self) -> None:
        self.owner, self.store = uuid.uuid4(), uuid.uuid4()
        self.chunks: list[Chunk] = []

    async def add(self, index: VectorIndex, count: int, *, start: int | None = None, **fields: Any) -> list[Chunk]:
        """``count`` chunks with the next directions (from ``start`` when given)."""
        added = []
        first = len(self.chunks) if start is None else start
        for i in range(first, first + count):
            chunk = a_chunk(self.owner, self.store, uuid.uuid4(), embedding=direction(i), **fields)
            await index.replace_file(self.store, chunk.file_id, [chunk])
            added.append(chunk)
        self.chunks += added
        return added


async def test_replace_file_is_idempotent_and_replaces(vector_index: VectorIndex) -> None:
    owner, store, file = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    chunks = [a_chunk(owner, store, file, p, text=f"part {p}", attributes={"n": 1.0}) for p in range(3)]
    await vector_index.replace_file(store, file, chunks)
    usage = await vector_index.usage_bytes(store)
    await vector_index.replace_file(store, file, chunks)
    assert await vector_index.file_chunks(owner, store, file) == chunks
    assert await vector_index.usage_bytes(store) == usage
    await vector_index.replace_file(store, file, chunks[:1])
    assert await vector_index.file_chunks(owner, store, file) == chunks[:1]
    await vector_index.replace_file(store, file, [])
    assert await vector_index.file_chunks(owner, store, file) == []


async def test_file_chunks_in_position_order_and_only_for_the_owner(vector_index: VectorIndex) -> None:
    owner, store, file = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    chunks = [a_chunk(owner, store, file, p, text=f"part {p}") for p in range(4)]
    await vector_index.replace_file(store, file, [chunks[2], chunks[0], chunks[3], chunks[1]])
    assert [c.position for c in await vector_index.file_chunks(owner, store, file)] == [0, 1, 2, 3]
    assert await vector_index.file_chunks(uuid.uuid4(), store, file) == []
    assert await vector_index.file_chunks(owner, uuid.uuid4(), file) == []


async def test_chunks_of_another_file_or_repeating_a_position_are_refused(vector_index: VectorIndex) -> None:
    owner, store, file = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with pytest.raises(ValueError, match="must belong to the store and the file"):
        await vector_index.replace_file(store, uuid.uuid4(), [a_chunk(owner, store, uuid.uuid4())])
    with pytest.raises(ValueError, match="distinct ids and positions"):
        await vector_index.replace_file(store, file, [a_chunk(owner, store, file, 0), a_chunk(owner, store, file, 0)])
    assert await vector_index.file_chunks(owner, store, file) == []


async def test_search_ranks_by_cosine_with_exact_fused_scores(vector_index: VectorIndex) -> None:
    corpus = Corpus()
    chunks = await corpus.add(vector_index, 5)
    hits = await vector_index.search(query(corpus.owner, [corpus.store]))
    assert [h.chunk for h in hits] == chunks
    assert [h.score for h in hits] == pytest.approx([rrf(r) for r in range(1, 6)])
    assert all(0.0 < h.score <= 1.0 for h in hits)


async def test_limit_and_score_threshold(vector_index: VectorIndex) -> None:
    corpus = Corpus()
    chunks = await corpus.add(vector_index, 6)
    limited = await vector_index.search(query(corpus.owner, [corpus.store], limit=2))
    assert [h.chunk.id for h in limited] == [c.id for c in chunks[:2]]
    threshold = (rrf(3) + rrf(4)) / 2
    above = await vector_index.search(query(corpus.owner, [corpus.store], score_threshold=threshold))
    assert [h.chunk.id for h in above] == [c.id for c in chunks[:3]]
    assert await vector_index.search(query(corpus.owner, [corpus.store], score_threshold=rrf(1) + 0.01)) == []
    assert await vector_index.search(query(corpus.owner, [corpus.store], limit=0)) == []


async def test_the_text_half_finds_an_exact_code_the_vectors_miss(vector_index: VectorIndex) -> None:
    corpus = Corpus()
    await corpus.add(vector_index, 8, text="general notes about the product")
    [coded] = await corpus.add(vector_index, 1, text="Error XK-4711 means the quota of the account ran out")
    coded_far = a_chunk(corpus.owner, corpus.store, coded.file_id, text=coded.text, embedding=(-1.0, 0.0, 0.0, 0.0))
    await vector_index.replace_file(corpus.store, coded.file_id, [coded_far])

    vector_only = await vector_index.search(query(corpus.owner, [corpus.store], limit=3))
    assert coded_far.id not in {h.chunk.id for h in vector_only}
    hybrid = await vector_index.search(query(corpus.owner, [corpus.store], limit=3, text="what is XK-4711?"))
    # Last of the vector half but first of the text half: above the vector half's first (rrf(1) = 0.5).
    assert [h.chunk.id for h in hybrid] == [coded_far.id, *(h.chunk.id for h in vector_only[:2])]
    assert [h.score for h in hybrid] == pytest.approx([rrf(9, 1), rrf(1), rrf(2)])


async def test_a_code_is_found_among_hundreds_of_chunks_matching_a_common_word(vector_index: VectorIndex) -> None:
    # More chunks match the common word than pgvector ranks per word (it samples 4 x 50 of them): the one chunk
    # with the code still comes first of the text half.
    corpus = Corpus()
    common = [a_chunk(corpus.owner, corpus.store, uuid.uuid4(), i, text="quota notes") for i in range(260)]
    await vector_index.replace_file(
        corpus.store, common[0].file_id, [replace(c, file_id=common[0].file_id) for c in common]
    )
    [coded] = await corpus.add(vector_index, 1, text="quota XK-4711", start=40)

    text_only = await vector_index.search(
        query(corpus.owner, [corpus.store], embedding=(), limit=3, text="quota XK-4711")
    )

    assert text_only[0].chunk.id == coded.id
    assert {h.chunk.id for h in text_only[1:]} <= {c.id for c in common}
    assert [h.score for h in text_only] == pytest.approx([rrf(None, 1), rrf(None, 2), rrf(None, 3)])


async def test_a_chunk_first_in_both_halves_scores_one(vector_index: VectorIndex) -> None:
    corpus = Corpus()
    [best] = await corpus.add(vector_index, 1, text="the invoice total is wrong")
    await corpus.add(vector_index, 3, text="unrelated paragraph")
    hits = await vector_index.search(query(corpus.owner, [corpus.store], text="invoice"))
    assert hits[0].chunk.id == best.id
    assert hits[0].score == pytest.approx(1.0)


async def test_chunks_of_another_dimension_are_not_in_the_vector_half(vector_index: VectorIndex) -> None:
    corpus = Corpus()
    [same] = await corpus.add(vector_index, 1)
    other = a_chunk(corpus.owner, corpus.store, uuid.uuid4(), embedding=(1.0, 0.0, 0.0))
    await vector_index.replace_file(corpus.store, other.file_id, [other])
    hits = await vector_index.search(query(corpus.owner, [corpus.store]))
    assert [h.chunk.id for h in hits] == [same.id]


async def test_search_spans_the_given_stores_only(vector_index: VectorIndex) -> None:
    first, second, third = Corpus(), Corpus(), Corpus()
    second.owner = third.owner = first.owner
    [a] = await first.add(vector_index, 1, start=0)
    [b] = await second.add(vector_index, 1, start=1)
    [c] = await first.add(vector_index, 1, start=2)
    await third.add(vector_index, 1, start=0)
    hits = await vector_index.search(query(first.owner, [first.store, second.store]))
    assert [h.chunk.id for h in hits] == [a.id, b.id, c.id]


async def test_a_tenant_never_sees_another_tenants_identical_chunk(vector_index: VectorIndex) -> None:
    ada, bob = Corpus(), Corpus()
    text = "Our secret launch code is ORCHID-77"
    [ada_chunk] = await ada.add(vector_index, 1, text=text)
    [bob_chunk] = await bob.add(vector_index, 1, text=text)
    both_stores = [ada.store, bob.store]
    for owner, mine in ((ada.owner, ada_chunk), (bob.owner, bob_chunk)):
        hits = await vector_index.search(query(owner, both_stores, text="ORCHID-77 launch code"))
        assert [h.chunk.id for h in hits] == [mine.id]
        assert hits[0].chunk.owner_id == owner
    assert await vector_index.search(query(ada.owner, [bob.store], text=text)) == []
    assert await vector_index.file_chunks(ada.owner, bob.store, bob_chunk.file_id) == []


async def test_delete_file_and_store(vector_index: VectorIndex) -> None:
    kept, dropped = Corpus(), Corpus()
    kept_chunks = await kept.add(vector_index, 2)
    await dropped.add(vector_index, 2)
    await vector_index.delete_file(kept.store, kept_chunks[0].file_id)
    await vector_index.delete_file(kept.store, kept_chunks[0].file_id)  # twice is fine
    await vector_index.delete_file(kept.store, uuid.uuid4())
    hits = await vector_index.search(query(kept.owner, [kept.store]))
    assert [h.chunk.id for h in hits] == [kept_chunks[1].id]
    await vector_index.delete_store(dropped.store)
    await vector_index.delete_store(dropped.store)
    assert await vector_index.search(query(dropped.owner, [dropped.store])) == []
    assert await vector_index.usage_bytes(dropped.store) == 0
    assert await vector_index.file_chunks(kept.owner, kept.store, kept_chunks[1].file_id) == [kept_chunks[1]]


async def test_usage_bytes_counts_text_and_float32_vectors(vector_index: VectorIndex) -> None:
    owner, store, file = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert await vector_index.usage_bytes(store) == 0
    chunks = [a_chunk(owner, store, file, 0, text="héllo"), a_chunk(owner, store, file, 1, text="world")]
    await vector_index.replace_file(store, file, chunks)
    assert await vector_index.usage_bytes(store) == (6 + 4 * DIMS) + (5 + 4 * DIMS)


# --- attribute filters -------------------------------------------------------------------------------------------

FILES: dict[str, dict[str, AttributeValue]] = {
    "a": {"kind": "report", "year": 2023.0, "draft": False},
    "b": {"kind": "memo", "year": 2024.0, "draft": True},
    "c": {"kind": "report", "year": 2025.5},
    "d": {"kind": "Report", "year": "2024"},
    "e": {},
}


def eq(key: str, value: Any) -> Comparison:
    return Comparison(key, ComparisonOperator.EQ, value)


def op(name: str, key: str, value: Any) -> Comparison:
    return Comparison(key, ComparisonOperator(name), value)


FILTER_CASES: list[tuple[str, AttributeFilter, set[str]]] = [
    ("eq string", eq("kind", "report"), {"a", "c"}),
    ("eq number, int and float alike", eq("year", 2024), {"b"}),
    ("eq is typed", eq("year", "2024"), {"d"}),
    ("eq boolean", eq("draft", False), {"a"}),
    ("ne matches a missing attribute", op("ne", "kind", "report"), {"b", "d", "e"}),
    ("ne boolean", op("ne", "draft", True), {"a", "c", "d", "e"}),
    ("gt number", op("gt", "year", 2024.0), {"c"}),
    ("gte number", op("gte", "year", 2024.0), {"b", "c"}),
    ("lt number", op("lt", "year", 2024.0), {"a"}),
    ("lte number", op("lte", "year", 2024.0), {"a", "b"}),
    ("gt string by code point", op("gt", "kind", "Report"), {"a", "b", "c"}),
    ("lt on a boolean matches nothing", op("lt", "draft", True), set()),
    ("in", op("in", "kind", ("memo", "Report")), {"b", "d"}),
    ("in mixed types", op("in", "year", (2023.0, "2024")), {"a", "d"}),
    ("nin", op("nin", "kind", ("report", "memo")), {"d", "e"}),
    ("and", Compound(CompoundOperator.AND, (eq("kind", "report"), op("gt", "year", 2024.0))), {"c"}),
    ("or", Compound(CompoundOperator.OR, (eq("kind", "memo"), eq("draft", False))), {"a", "b"}),
    (
        "nested",
        Compound(
            CompoundOperator.AND,
            (
                Compound(CompoundOperator.OR, (eq("kind", "report"), eq("kind", "memo"))),
                op("ne", "draft", True),
            ),
        ),
        {"a", "c"},
    ),
    ("empty and", Compound(CompoundOperator.AND, ()), {"a", "b", "c", "d", "e"}),
    ("empty or", Compound(CompoundOperator.OR, ()), set()),
    ("a key with quotes", eq('it\'s "odd"', "x"), set()),
]


@pytest.mark.parametrize(
    ("attribute_filter", "expected"), [c[1:] for c in FILTER_CASES], ids=[c[0] for c in FILTER_CASES]
)
async def test_attribute_filters(
    vector_index: VectorIndex, attribute_filter: AttributeFilter, expected: set[str]
) -> None:
    owner, store = uuid.uuid4(), uuid.uuid4()
    names: dict[uuid.UUID, str] = {}
    for i, (name, attributes) in enumerate(FILES.items()):
        chunk = a_chunk(owner, store, uuid.uuid4(), text=f"file {name}", embedding=direction(i), attributes=attributes)
        await vector_index.replace_file(store, chunk.file_id, [chunk])
        names[chunk.id] = name
    hits = await vector_index.search(query(owner, [store], filter=attribute_filter, text="file"))
    assert {names[h.chunk.id] for h in hits} == expected
