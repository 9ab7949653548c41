"""The ingestion job: a store file's bytes parsed, chunked, embedded through the pipeline and written to the index.

A job only names the work (owner, store, file); the database holds its state. Running it twice changes nothing the
second time: it works only on a file still ``in_progress``, and ``replace_file`` makes the chunks the same ones.
Each step's failure marks the file ``failed`` with OpenAI's code and a reason; nothing is retried behind the user's
back (attaching the file again retries it). The embeddings are billed to the owner, through the API key that
attached the file when it is still usable: budgets, rate limits and usage records as for any model call. A rate
limit is waited out (its ``Retry-After``), up to ``max_wait_seconds`` in all: a large file is paced by its owner's
tokens per minute instead of failing; a spent budget fails the file at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from application.llm.model_call import ModelCall
from application.unit_of_work import UnitOfWorkFactory
from application.usage.context import CallContext
from domain.auth.model import Principal, Scope
from domain.files.errors import FileNotFound
from domain.files.ports import BlobStore
from domain.llm.model import EmbeddingRequest
from domain.shared.clock import Clock
from domain.shared.errors import DomainError, RateLimited
from domain.shared.ids import new_id
from domain.usage.model import Limits
from domain.vectors.chunking import TextChunk, chunk_text
from domain.vectors.errors import UnsupportedDocument
from domain.vectors.model import Chunk
from domain.vectors.ports import VectorIndex
from domain.vectors.store_ports import DocumentParser
from domain.vectors.stores import FileErrorCode, FileStatus, VectorStore, VectorStoreFile

FLOAT_BYTES = 4  # a vector's size as the indexes keep it (float32)


class IngestionFailed(Exception):
    def __init__(self, code: FileErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Work:
    store: VectorStore
    file: VectorStoreFile
    principal: Principal


class IngestFile:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        blobs: BlobStore,
        parser: DocumentParser,
        index: VectorIndex,
        model_call: ModelCall,
        clock: Clock,
        batch_size: int,
        max_wait_seconds: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._uow = uow
        self._blobs = blobs
        self._parser = parser
        self._index = index
        self._model_call = model_call
        self._clock = clock
        self._batch_size = batch_size
        self._max_wait = max_wait_seconds
        self._sleep = sleep

    async def __call__(self, args: Mapping[str, str]) -> None:
        """The job handler (``domain.jobs.model.JobHandler``)."""
        owner, store_id, file_id = (uuid.UUID(args[k]) for k in ("owner_id", "store_id", "file_id"))
        work = await self._work(owner, store_id, file_id)
        if work is None:
            return
        try:
            chunks = await self._chunks(work)
        except IngestionFailed as failure:
            await self._finish(work.file, failure=failure)
            return
        except Exception:  # a defect: the file fails rather than stay in progress, and the worker logs the error
            await self._finish(work.file, failure=IngestionFailed(FileErrorCode.SERVER_ERROR, "internal error"))
            raise
        await self._finish(work.file, chunks=chunks)

    async def _work(self, owner: uuid.UUID, store_id: uuid.UUID, file_id: uuid.UUID) -> _Work | None:
        async with self._uow() as uow:
            store = await uow.vector_stores.find_owned(store_id, owner)
            file = await uow.vector_store_files.find(store_id, file_id) if store is not None else None
            if store is None or file is None or file.status is not FileStatus.IN_PROGRESS:
                return None  # detached, deleted, or already done: nothing to do
            user = await uow.users.find(owner)
            key = await uow.api_keys.find(file.api_key_id) if file.api_key_id is not None else None
        if user is None or not user.is_active:
            await self._finish(file, failure=IngestionFailed(FileErrorCode.SERVER_ERROR, "the owner is not active"))
            return None
        usable = key is not None and key.owner_id == owner and key.is_usable(self._clock.now())
        principal = Principal(
            user_id=owner,
            role=user.role,
            scopes=frozenset({Scope.CHAT}),
            api_key_id=key.id if usable and key is not None else None,
            user_limits=user.limits,
            key_limits=key.limits if usable and key is not None else Limits(),
        )
        return _Work(store, file, principal)

    async def _chunks(self, work: _Work) -> list[Chunk]:
        file = work.file
        try:
            data = await self._blobs.get(str(file.file_id))
        except FileNotFound:
            raise IngestionFailed(FileErrorCode.INVALID_FILE, "the file's content is gone") from None
        try:
            text = await self._parser.parse(file.filename, data)
        except UnsupportedDocument as exc:
            raise IngestionFailed(FileErrorCode.UNSUPPORTED_FILE, exc.detail) from None
        pieces = await asyncio.to_thread(chunk_text, text, file.chunking)
        if not pieces:
            raise IngestionFailed(FileErrorCode.INVALID_FILE, "the file holds no text")
        vectors = await self._embed(work, [p.text for p in pieces])
        return [self._chunk(work, piece, vector) for piece, vector in zip(pieces, vectors, strict=True)]

    async def _embed(self, work: _Work, texts: Sequence[str]) -> list[tuple[float, ...]]:
        context = CallContext(principal=work.principal, request_id=f"ingest-{work.file.file_id.hex}")
        waited = 0.0
        vectors: list[tuple[float, ...]] = []
        for start in range(0, len(texts), self._batch_size):
            request = EmbeddingRequest(
                model=work.store.embedding_model, inputs=tuple(texts[start : start + self._batch_size])
            )
            while True:
                try:
                    embeddings = await self._model_call.embed(request, context)
                    break
                except RateLimited as exc:
                    pause = max(exc.retry_after_seconds or 1.0, 0.05)
                    if waited + pause > self._max_wait:
                        raise IngestionFailed(FileErrorCode.RATE_LIMIT_EXCEEDED, exc.detail) from None
                    waited += pause
                    await self._sleep(pause)
                except DomainError as exc:
                    raise IngestionFailed(FileErrorCode.SERVER_ERROR, f"embedding failed: {exc.detail}") from None
            vectors.extend(embeddings.vectors)
        return vectors

    @staticmethod
    def _chunk(work: _Work, piece: TextChunk, vector: tuple[float, ...]) -> Chunk:
        return Chunk(
            id=new_id(),
            owner_id=work.store.owner_id,
            store_id=work.store.id,
            file_id=work.file.file_id,
            position=piece.position,
            text=piece.text,
            token_count=piece.token_count,
            embedding=tuple(vector),
            filename=work.file.filename,
            attributes=dict(work.file.attributes),
        )

    async def _finish(
        self, file: VectorStoreFile, *, chunks: list[Chunk] | None = None, failure: IngestionFailed | None = None
    ) -> None:
        """Chunks written first (idempotent), then the file marked; a file detached meanwhile leaves no chunks."""
        if chunks is not None:
            current = await self._current(file)
            if current is None:
                return
            if current.attributes != file.attributes:  # changed during the ingestion: the chunks carry the new ones
                chunks = [_restamped(c, current) for c in chunks]
            await self._index.replace_file(file.store_id, file.file_id, chunks)
        async with self._uow() as uow:
            current = await uow.vector_store_files.find(file.store_id, file.file_id)
            if current is not None and current.status is FileStatus.IN_PROGRESS:
                if failure is not None:
                    current.fail(failure.code, failure.message)
                else:
                    current.complete(sum(_size(c) for c in chunks or ()))
                await uow.vector_store_files.update(current)
                await uow.commit()
        if current is None and chunks is not None:
            await self._index.delete_file(file.store_id, file.file_id)

    async def _current(self, file: VectorStoreFile) -> VectorStoreFile | None:
        async with self._uow() as uow:
            return await uow.vector_store_files.find(file.store_id, file.file_id)


def _restamped(chunk: Chunk, file: VectorStoreFile) -> Chunk:
    return dataclasses.replace(chunk, attributes=dict(file.attributes))


def _size(chunk: Chunk) -> int:
    return len(chunk.text.encode()) + FLOAT_BYTES * len(chunk.embedding)
