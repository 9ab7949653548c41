"""The abstract unit of work: one transaction, the repositories that work inside it, and commit or roll back."""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self

from domain.audit.ports import AuditLog
from domain.auth.ports import ApiKeyRepository, RefreshTokenRepository, UserRepository
from domain.batches.ports import BatchRepository
from domain.chat.ports import ConversationRepository
from domain.credentials.ports import ProviderCredentialRepository
from domain.files.ports import FileRepository
from domain.idempotency.ports import IdempotencyRepository
from domain.jobs.ports import JobOutbox
from domain.responses.ports import ResponseRepository
from domain.usage.ports import UsageRepository
from domain.vectors.store_ports import (
    VectorStoreFileBatchRepository,
    VectorStoreFileRepository,
    VectorStoreRepository,
)


class UnitOfWork(abc.ABC):
    """``async with uow:`` opens a transaction; leaving the block without ``commit()`` rolls it back.

    An instance is single-use per block and not shared between concurrent tasks: the container hands each use-case
    call its own.
    """

    users: UserRepository
    api_keys: ApiKeyRepository
    refresh_tokens: RefreshTokenRepository
    conversations: ConversationRepository
    usage: UsageRepository
    idempotency: IdempotencyRepository
    audit_log: AuditLog
    responses: ResponseRepository
    files: FileRepository
    batches: BatchRepository
    jobs: JobOutbox
    vector_stores: VectorStoreRepository
    vector_store_files: VectorStoreFileRepository
    vector_store_file_batches: VectorStoreFileBatchRepository
    provider_credentials: ProviderCredentialRepository

    async def __aenter__(self) -> Self:
        await self._begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.rollback()
        finally:
            await self._end()

    @abc.abstractmethod
    async def _begin(self) -> None: ...

    @abc.abstractmethod
    async def _end(self) -> None: ...

    @abc.abstractmethod
    async def commit(self) -> None: ...

    @abc.abstractmethod
    async def rollback(self) -> None:
        """Discard what was not committed; harmless after a commit."""


class UnitOfWorkFactory(abc.ABC):
    """Makes a fresh unit of work for each use-case call."""

    @abc.abstractmethod
    def __call__(self) -> UnitOfWork: ...

    def for_one_statement(self) -> UnitOfWork:
        """A unit of work for a block that runs ONE repository call which is a single statement, atomic by itself
        (``get_owned_with_history``, ``add_turns``): where the adapter can, it runs without BEGIN and COMMIT (two
        round trips saved); elsewhere it is an ordinary transaction. Commit it as usual."""
        return self()
