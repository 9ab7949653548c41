"""Vector stores on in-memory adapters (the in-memory index included): ingestion as a job, search, ownership."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

import pytest

from application.files.upload_file import UploadFile, UploadFileCommand
from application.llm.model_call import ModelCall
from application.usage.budgets import Budgets
from application.usage.metering import Meter
from application.usage.rate_limits import RateLimitDefaults
from application.vectors.attach import INGEST_TASK
from application.vectors.attach_file import AttachFile, AttachFileCommand
from application.vectors.create_vector_store import CreateVectorStore, CreateVectorStoreCommand
from application.vectors.delete_vector_store import DeleteVectorStore
from application.vectors.detach_file import DetachFile
from application.vectors.get_store_file import GetStoreFile, GetStoreFileContent, StoreFileQuery
from application.vectors.get_vector_store import GetVectorStore, StoreQuery
from application.vectors.ingest_file import IngestFile
from application.vectors.search_vector_stores import SearchCommand, SearchVectorStores
from application.vectors.update_store_file import UpdateStoreFile, UpdateStoreFileCommand
from domain.auth.model import Principal, Scope
from domain.files.errors import FileNotFound
from domain.jobs.model import Job
from domain.llm.model import ModelKind
from domain.shared.errors import Forbidden, RuleViolation
from domain.vectors.errors import VectorStoreFileNotFound, VectorStoreNotFound
from domain.vectors.model import Comparison, ComparisonOperator
from domain.vectors.stores import ChunkingStrategy, FileErrorCode, FileStatus, StoreStatus
from infrastructure.jobs.in_process import InProcessJobQueue
from infrastructure.llm.catalog import StaticModelCatalog
from infrastructure.llm.local import LocalProvider
from infrastructure.llm.local_embeddings import LocalEmbeddingProvider
from infrastructure.llm.router import ModelRouter
from infrastructure.memory.files import InMemoryBlobStore
from infrastructure.memory.rate_limiter import InMemoryRateLimiter
from infrastructure.memory.spend_counter import InMemorySpendCounter
from infrastructure.memory.unit_of_work import InMemoryUnitOfWorkFactory
from infrastructure.memory.vector_index import InMemoryVectorIndex
from infrastructure.vectors.parsers import LibraryDocumentParser
from tests.fakes.usage import ListRecorder
from tests.unit.conftest import Env, local_spec

pytestmark = pytest.mark.unit

EMBED = local_spec("local-embed", kind=ModelKind.EMBEDDING, upstream_model="local-hash-embed", dimensions=64)
REPORT = "The quarterly report names project Bluebird and the code ZX-81.\n\nRevenue grew in the northern region."


@dataclass
class Rig:
    env: Env
    queue: InProcessJobQueue
    blobs: InMemoryBlobStore
    index: InMemoryVectorIndex
    recorder: ListRecorder
    model_call: ModelCall
    sleeps: list[float] = field(default_factory=list)
    now_ms: int = 0
    max_wait: float = 300

    async def sleep(self, seconds: float) -> None:
        """The ingestion's waits: recorded, and the rate limiter's clock moved on by as much."""
        self.sleeps.append(seconds)
        self.now_ms += int(seconds * 1000)

    def meter(self, defaults: RateLimitDefaults) -> None:
        """Model calls through a meter with these rate limits, on a clock that ``sleep`` moves."""
        catalog = self.env.catalog
        meter = Meter(
            catalog=catalog,
            recorder=self.recorder,
            budgets=Budgets(counter=InMemorySpendCounter(), uow=self.env.uow, clock=self.env.clock, fail_open=True),
            limiter=InMemoryRateLimiter(clock_ms=lambda: self.now_ms),
            defaults=defaults,
            clock=self.env.clock,
            fail_open=True,
        )
        self.model_call = ModelCall(models=self.model_call._models, catalog=catalog, meter=meter)

    async def upload(self, principal: Principal, filename: str, content: bytes) -> str:
        use_case = UploadFile(uow=self.env.uow, blobs=self.blobs, clock=self.env.clock, max_bytes=1 << 20)
        command = UploadFileCommand(principal=principal, filename=filename, purpose="assistants", content=content)
        return (await use_case.execute(command)).public_id

    async def store(self, principal: Principal, *file_ids: str, **options: object) -> uuid.UUID:
        use_case = CreateVectorStore(
            uow=self.env.uow, catalog=self.env.catalog, clock=self.env.clock, default_model="local-embed"
        )
        command = CreateVectorStoreCommand(principal=principal, file_ids=file_ids, **options)  # type: ignore[arg-type]
        return (await use_case.execute(command)).store.id

    def ingest(self) -> IngestFile:
        return IngestFile(
            uow=self.env.uow,
            blobs=self.blobs,
            parser=LibraryDocumentParser(),
            index=self.index,
            model_call=self.model_call,
            clock=self.env.clock,
            batch_size=2,
            max_wait_seconds=self.max_wait,
            sleep=self.sleep,
        )

    async def run_jobs(self) -> list[Job]:
        """Runs every job enqueued so far, like the in-process worker; returns them."""
        ran = []
        while not self.queue._jobs.empty():
            job = await self.queue.get()
            assert job.task == INGEST_TASK
            await self.ingest()(job.args)
            self.queue.done()
            ran.append(job)
        return ran

    def search(self) -> SearchVectorStores:
        return SearchVectorStores(uow=self.env.uow, index=self.index, model_call=self.model_call, clock=self.env.clock)

    async def file(self, principal: Principal, store_id: uuid.UUID, file_id: str) -> object:
        query = StoreFileQuery(principal, store_id, uuid.UUID(file_id.removeprefix("file-")))
        return await GetStoreFile(uow=self.env.uow).execute(query)


@pytest.fixture
def rig(env: Env) -> Rig:
    queue = InProcessJobQueue()
    env.uow = InMemoryUnitOfWorkFactory(job_queue=queue)
    catalog = StaticModelCatalog([*env.catalog.list(), EMBED], default_model="local")
    env.catalog = catalog
    router = ModelRouter(
        catalog,
        {s.name: LocalProvider(s) for s in catalog.list() if s.kind is ModelKind.CHAT},
        embedders={"local-embed": LocalEmbeddingProvider(EMBED)},
    )
    recorder = ListRecorder()
    meter = Meter(
        catalog=catalog,
        recorder=recorder,
        budgets=Budgets(counter=InMemorySpendCounter(), uow=env.uow, clock=env.clock, fail_open=True),
        limiter=InMemoryRateLimiter(),
        defaults=RateLimitDefaults(),
        clock=env.clock,
        fail_open=True,
    )
    model_call = ModelCall(models=router, catalog=catalog, meter=meter)
    return Rig(env, queue, InMemoryBlobStore(), InMemoryVectorIndex(), recorder, model_call)


def file_uuid(public_id: str) -> uuid.UUID:
    return uuid.UUID(public_id.removeprefix("file-"))


async def test_a_file_is_ingested_by_one_job_and_billed_as_embeddings(rig: Rig) -> None:
    ada = await rig.env.principal("ada@example.com")
    file_id = await rig.upload(ada, "report.md", b"# Report\n\n" + REPORT.encode() * 30)
    store_id = await rig.store(ada, file_id, chunking=ChunkingStrategy.of(100, 20))
    assert (await rig.file(ada, store_id, file_id)).status is FileStatus.IN_PROGRESS  # type: ignore[attr-defined]

    assert len(await rig.run_jobs()) == 1
    done = await rig.file(ada, store_id, file_id)
    chunks = await rig.index.file_chunks(ada.user_id, store_id, file_uuid(file_id))

    assert done.status is FileStatus.COMPLETED  # type: ignore[attr-defined]
    assert len(chunks) > 4
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert all(c.token_count <= 100 for c in chunks)
    assert chunks[0].text.startswith("Report\nThe quarterly report")  # Markdown parsed: no '#'
    assert done.usage_bytes == await rig.index.usage_bytes(store_id)  # type: ignore[attr-defined]
    # Embedded in batches of two through the pipeline: one usage record per call, all of the embedding model.
    assert len(rig.recorder.records) == -(-len(chunks) // 2)
    assert {(r.model, r.output_tokens, r.user_id) for r in rig.recorder.records} == {("local-embed", 0, ada.user_id)}
    view = await GetVectorStore(uow=rig.env.uow, clock=rig.env.clock).execute(StoreQuery(ada, store_id))
    assert (view.status, view.counts.completed, view.usage_bytes) == (StoreStatus.COMPLETED, 1, done.usage_bytes)  # type: ignore[attr-defined]


async def test_a_job_run_twice_and_a_file_attached_twice_change_nothing(rig: Rig) -> None:
    ada = await rig.env.principal("ada@example.com")
    file_id = await rig.upload(ada, "report.txt", REPORT.encode())
    store_id = await rig.store(ada, file_id)
    [job] = await rig.run_jobs()
    chunks = await rig.index.file_chunks(ada.user_id, store_id, file_uuid(file_id))
    records = len(rig.recorder.records)

    await rig.ingest()(job.args)  # the queue delivered it again
    attach = AttachFile(uow=rig.env.uow, clock=rig.env.clock)
    again = await attach.execute(AttachFileCommand(principal=ada, store_id=store_id, file_id=file_id))

    assert again.status is FileStatus.COMPLETED
    assert await rig.run_jobs() == []  # attaching it again enqueued nothing
    assert await rig.index.file_chunks(ada.user_id, store_id, file_uuid(file_id)) == chunks
    assert len(rig.recorder.records) == records


async def test_an_unreadable_file_fails_with_a_reason_and_is_retried_by_attaching_it_again(rig: Rig) -> None:
    ada = await rig.env.principal("ada@example.com")
    binary = await rig.upload(ada, "image.png", b"\x89PNG\r\n")
    broken = await rig.upload(ada, "broken.pdf", b"%PDF-1.4 not really")
    store_id = await rig.store(ada, binary, broken)
    await rig.run_jobs()

    png, pdf = await rig.file(ada, store_id, binary), await rig.file(ada, store_id, broken)
    assert (png.status, png.error_code) == (FileStatus.FAILED, FileErrorCode.UNSUPPORTED_FILE)  # type: ignore[attr-defined]
    assert "'.png' are not supported" in png.error_message  # type: ignore[attr-defined]
    assert (pdf.status, pdf.error_code) == (FileStatus.FAILED, FileErrorCode.UNSUPPORTED_FILE)  # type: ignore[attr-defined]
    assert rig.recorder.records == []  # nothing was embedded

    attach = AttachFile(uow=rig.env.uow, clock=rig.env.clock)
    retried = await attach.execute(AttachFileCommand(principal=ada, store_id=store_id, file_id=broken))
    assert retried.status is FileStatus.IN_PROGRESS
    assert len(await rig.run_jobs()) == 1


async def test_search_ranks_filters_and_carries_what_a_citation_needs(rig: Rig) -> None:
    ada = await rig.env.principal("ada@example.com")
    report = await rig.upload(ada, "report.txt", REPORT.encode())
    other = await rig.upload(ada, "recipes.txt", b"Bake the bread for forty minutes at two hundred degrees.")
    store_id = await rig.store(ada)
    attach = AttachFile(uow=rig.env.uow, clock=rig.env.clock)
    for file_id, team in ((report, "finance"), (other, "kitchen")):
        await attach.execute(
            AttachFileCommand(principal=ada, store_id=store_id, file_id=file_id, attributes={"team": team})
        )
    await rig.run_jobs()
    records = len(rig.recorder.records)

    results = await rig.search().execute(SearchCommand(principal=ada, store_ids=(store_id,), queries=("ZX-81",)))
    [best, *_] = results.passages
    assert (best.public_file_id, best.filename, best.position) == (report, "report.txt", 0)
    assert "ZX-81" in best.text
    assert best.attributes == {"team": "finance"}
    assert 0 < best.score <= 1
    assert len(rig.recorder.records) == records + 1  # the query embedded through the pipeline

    only_kitchen = Comparison("team", ComparisonOperator.EQ, "kitchen")
    filtered = await rig.search().execute(
        SearchCommand(principal=ada, store_ids=(store_id,), queries=("ZX-81", "bread"), filter=only_kitchen)
    )
    assert {p.public_file_id for p in filtered.passages} == {other}
    strict = await rig.search().execute(
        SearchCommand(principal=ada, store_ids=(store_id,), queries=("ZX-81",), score_threshold=1.0)
    )
    assert [(p.public_file_id, p.score) for p in strict.passages] == [(report, 1.0)]  # first in both halves only
    assert len(results.passages) == 2


async def test_two_tenants_with_identical_text_never_see_each_other(rig: Rig) -> None:
    ada, bob = await rig.env.principal("ada@example.com"), await rig.env.principal("bob@example.com")
    ada_file = await rig.upload(ada, "same.txt", REPORT.encode())
    bob_file = await rig.upload(bob, "same.txt", REPORT.encode())
    ada_store, bob_store = await rig.store(ada, ada_file), await rig.store(bob, bob_file)
    await rig.run_jobs()

    found = await rig.search().execute(SearchCommand(principal=bob, store_ids=(bob_store,), queries=(REPORT,)))
    assert {p.public_file_id for p in found.passages} == {bob_file}
    assert {p.store_id for p in found.passages} == {bob_store}
    with pytest.raises(VectorStoreNotFound):  # someone else's store is a 404, not a 403
        await rig.search().execute(SearchCommand(principal=bob, store_ids=(ada_store,), queries=(REPORT,)))
    with pytest.raises(VectorStoreNotFound):
        await rig.search().execute(SearchCommand(principal=bob, store_ids=(bob_store, ada_store), queries=(REPORT,)))
    with pytest.raises(VectorStoreNotFound):
        await GetVectorStore(uow=rig.env.uow, clock=rig.env.clock).execute(StoreQuery(bob, ada_store))


async def test_detaching_a_file_or_deleting_a_store_deletes_its_chunks(rig: Rig) -> None:
    ada = await rig.env.principal("ada@example.com")
    first, second = await rig.upload(ada, "a.txt", b"alpha text"), await rig.upload(ada, "b.txt", b"beta text")
    store_id = await rig.store(ada, first, second)
    await rig.run_jobs()

    detached = await DetachFile(uow=rig.env.uow, index=rig.index).execute(
        StoreFileQuery(ada, store_id, file_uuid(first))
    )
    assert detached.file_id == file_uuid(first)
    assert await rig.index.file_chunks(ada.user_id, store_id, file_uuid(first)) == []
    with pytest.raises(VectorStoreFileNotFound):
        await rig.file(ada, store_id, first)

    await DeleteVectorStore(uow=rig.env.uow, index=rig.index).execute(StoreQuery(ada, store_id))
    assert await rig.index.usage_bytes(store_id) == 0
    with pytest.raises(VectorStoreNotFound):
        await GetVectorStore(uow=rig.env.uow, clock=rig.env.clock).execute(StoreQuery(ada, store_id))


async def test_new_attributes_reach_the_chunks_without_embedding_again(rig: Rig) -> None:
    ada = await rig.env.principal("ada@example.com")
    file_id = await rig.upload(ada, "data.json", b'{"title": "Bluebird", "tags": ["a", "b"], "n": 3}')
    store_id = await rig.store(ada, file_id)
    await rig.run_jobs()
    records = len(rig.recorder.records)

    update = UpdateStoreFile(uow=rig.env.uow, index=rig.index, clock=rig.env.clock)
    query = StoreFileQuery(ada, store_id, file_uuid(file_id))
    await update.execute(
        UpdateStoreFileCommand(principal=ada, store_id=store_id, file_id=query.file_id, attributes={"year": 2024})
    )
    file, chunks = await GetStoreFileContent(uow=rig.env.uow, index=rig.index).execute(query)

    assert file.attributes == {"year": 2024.0}
    assert [c.text for c in chunks] == ["title: Bluebird\ntags[0]: a\ntags[1]: b\nn: 3"]
    assert all(c.attributes == {"year": 2024.0} for c in chunks)
    assert len(rig.recorder.records) == records


async def test_the_rules_of_creation(rig: Rig) -> None:
    ada = await rig.env.principal("ada@example.com")
    with pytest.raises(RuleViolation, match="not an embedding model"):
        await rig.store(ada, embedding_model="local")
    with pytest.raises(RuleViolation, match=r"expires_after\.days"):
        await rig.store(ada, expires_after_days=366)
    with pytest.raises(RuleViolation, match="metadata"):
        await rig.store(ada, metadata={str(i): "v" for i in range(17)})
    with pytest.raises(FileNotFound):  # someone else's file, or none
        await rig.store(ada, "file-" + uuid.uuid4().hex)
    with pytest.raises(Forbidden):
        await rig.store(replace(ada, scopes=frozenset({Scope.MODELS})))
    for size, overlap in ((99, 0), (4097, 0), (200, 101), (200, -1)):
        with pytest.raises(RuleViolation, match="chunking_strategy"):
            ChunkingStrategy.of(size, overlap)


async def test_an_expired_store_can_be_read_but_not_searched(rig: Rig) -> None:
    ada = await rig.env.principal("ada@example.com")
    store_id = await rig.store(ada, expires_after_days=1)
    rig.env.clock.advance(days=1, seconds=1)

    view = await GetVectorStore(uow=rig.env.uow, clock=rig.env.clock).execute(StoreQuery(ada, store_id))
    assert view.status is StoreStatus.EXPIRED
    with pytest.raises(RuleViolation, match="expired"):
        await rig.search().execute(SearchCommand(principal=ada, store_ids=(store_id,), queries=("x",)))


async def test_a_rate_limit_is_waited_out_and_fails_the_file_only_past_the_wait(rig: Rig) -> None:
    ada = await rig.env.principal("ada@example.com")
    rig.meter(RateLimitDefaults(user_tokens_per_minute=600))  # about three batches a minute
    paced = await rig.upload(ada, "report.txt", REPORT.encode() * 60)
    store_id = await rig.store(ada, paced, chunking=ChunkingStrategy.of(100, 0))
    await rig.run_jobs()

    assert (await rig.file(ada, store_id, paced)).status is FileStatus.COMPLETED  # type: ignore[attr-defined]
    assert rig.sleeps
    assert sum(rig.sleeps) <= 300

    rig.max_wait = 30  # shorter than the minute the limit asks to wait
    rig.sleeps.clear()
    starved = await rig.upload(ada, "again.txt", REPORT.encode() * 20)
    await AttachFile(uow=rig.env.uow, clock=rig.env.clock).execute(
        AttachFileCommand(principal=ada, store_id=store_id, file_id=starved)
    )
    await rig.run_jobs()
    failed = await rig.file(ada, store_id, starved)
    assert (failed.status, failed.error_code) == (FileStatus.FAILED, FileErrorCode.RATE_LIMIT_EXCEEDED)  # type: ignore[attr-defined]
    assert "rate limit 'user-tokens' reached" in failed.error_message  # type: ignore[attr-defined]
    assert sum(rig.sleeps) <= 30
