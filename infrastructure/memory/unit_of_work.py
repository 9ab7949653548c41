"""The in-memory unit of work: really transactional, for fast tests and as a selectable backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from application.unit_of_work import UnitOfWork, UnitOfWorkFactory
from domain.audit.model import AuditEntry
from infrastructure.jobs.in_process import InProcessJobQueue, PendingJobs
from infrastructure.memory.batches import InMemoryBatchRepository
from infrastructure.memory.credentials import InMemoryProviderCredentialRepository
from infrastructure.memory.files import InMemoryFileRepository
from infrastructure.memory.repositories import (
    InMemoryApiKeyRepository,
    InMemoryAuditLog,
    InMemoryConversationRepository,
    InMemoryIdempotencyRepository,
    InMemoryRefreshTokenRepository,
    InMemoryUserRepository,
)
from infrastructure.memory.responses import InMemoryResponseRepository
from infrastructure.memory.store import InMemoryStore, Transaction
from infrastructure.memory.usage import InMemoryUsageRepository
from infrastructure.memory.vector_stores import (
    InMemoryVectorStoreFileBatchRepository,
    InMemoryVectorStoreFileRepository,
    InMemoryVectorStoreRepository,
)

__all__ = ["InMemoryStore", "InMemoryUnitOfWork", "InMemoryUnitOfWorkFactory"]
AuditListener = Callable[[Sequence[AuditEntry]], None]


class InMemoryUnitOfWork(UnitOfWork):
    """Writes go to a private overlay and reach the store only on ``commit``; ``commits`` counts them."""

    def __init__(
        self, store: InMemoryStore, on_audit: AuditListener | None = None, job_queue: InProcessJobQueue | None = None
    ) -> None:
        self.store = store
        self.commits = 0
        self._transaction: Transaction | None = None
        self._on_audit = on_audit
        self.jobs = self._pending = PendingJobs(job_queue)

    async def _begin(self) -> None:
        if self._transaction is not None:
            raise RuntimeError("this unit of work is already open")
        transaction = Transaction(self.store)
        self._transaction = transaction
        self.users = InMemoryUserRepository(transaction)
        self.api_keys = InMemoryApiKeyRepository(transaction)
        self.refresh_tokens = InMemoryRefreshTokenRepository(transaction)
        self.conversations = InMemoryConversationRepository(transaction)
        self.usage = InMemoryUsageRepository(transaction)
        self.idempotency = InMemoryIdempotencyRepository(transaction)
        self.responses = InMemoryResponseRepository(transaction)
        self.files = InMemoryFileRepository(transaction)
        self.vector_stores = InMemoryVectorStoreRepository(transaction)
        self.vector_store_files = InMemoryVectorStoreFileRepository(transaction)
        self.vector_store_file_batches = InMemoryVectorStoreFileBatchRepository(transaction)
        self.batches = InMemoryBatchRepository(transaction)
        self.provider_credentials = InMemoryProviderCredentialRepository(transaction)
        self._audit = InMemoryAuditLog(transaction)
        self.audit_log = self._audit

    async def commit(self) -> None:
        if self._transaction is None:
            raise RuntimeError("commit outside an open unit of work")
        self._transaction.commit()
        self._pending.publish()
        self.commits += 1
        entries, self._audit.added = self._audit.added, []
        if entries and self._on_audit is not None:
            self._on_audit(entries)

    async def rollback(self) -> None:
        self._pending.discard()
        if self._transaction is not None:
            self._transaction.rollback()

    async def _end(self) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            transaction.rollback()
            transaction.closed = True


class InMemoryUnitOfWorkFactory(UnitOfWorkFactory):
    def __init__(
        self,
        store: InMemoryStore | None = None,
        *,
        on_audit: AuditListener | None = None,
        job_queue: InProcessJobQueue | None = None,
    ) -> None:
        self.store = store if store is not None else InMemoryStore()
        self._on_audit = on_audit
        self.job_queue = job_queue

    def __call__(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.store, self._on_audit, self.job_queue)

    @property
    def commits(self) -> int:
        """Commits through any unit of work sharing this store."""
        return self.store.commits
