"""The vector store repositories behave the same on every adapter (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from application.unit_of_work import UnitOfWorkFactory
from domain.shared.errors import NotFound
from domain.shared.ids import new_id
from domain.vectors.stores import (
    ChunkingStrategy,
    FileCounts,
    FileErrorCode,
    FileStatus,
    StorePageCursor,
    VectorStore,
    VectorStoreFile,
)
from tests.contract.test_repositories import T0, at, saved_user

pytestmark = pytest.mark.contract


def a_store(owner_id: uuid.UUID, **overrides: Any) -> VectorStore:
    values: dict[str, Any] = {
        "id": new_id(),
        "owner_id": owner_id,
        "name": "kb",
        "embedding_model": "local-embed",
        "created_at": T0,
        "last_active_at": T0,
        "metadata": {"team": "hr"},
        "expires_after_days": 7,
        "description": "policies",
    }
    return VectorStore(**(values | overrides))


def a_file(store: VectorStore, **overrides: Any) -> VectorStoreFile:
    values: dict[str, Any] = {
        "store_id": store.id,
        "file_id": uuid.uuid4(),
        "owner_id": store.owner_id,
        "filename": "handbook.pdf",
        "created_at": T0,
        "chunking": ChunkingStrategy.of(300, 50),
        "attributes": {"lang": "en", "year": 2024.0, "draft": False},
        "api_key_id": uuid.uuid4(),
    }
    return VectorStoreFile(**(values | overrides))


async def saved(uow_factory: UnitOfWorkFactory, *stores: VectorStore, files: tuple[VectorStoreFile, ...] = ()) -> None:
    async with uow_factory() as uow:
        for store in stores:
            await uow.vector_stores.add(store)
        for file in files:
            await uow.vector_store_files.add(file)
        await uow.commit()


class TestVectorStoreRepository:
    async def test_add_find_update_owner_scoped(self, uow_factory: UnitOfWorkFactory) -> None:
        ada, bob = await saved_user(uow_factory), await saved_user(uow_factory)
        store = a_store(ada.id)
        await saved(uow_factory, store)
        async with uow_factory() as uow:
            assert await uow.vector_stores.find_owned(store.id, ada.id) == store
            assert await uow.vector_stores.find_owned(store.id, bob.id) is None
            store.name, store.metadata, store.expires_after_days, store.last_active_at = "new", {}, None, at(60)
            await uow.vector_stores.update(store)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.vector_stores.find_owned(store.id, ada.id) == store
            with pytest.raises(NotFound):
                await uow.vector_stores.update(a_store(ada.id))
            with pytest.raises(NotFound):
                await uow.vector_stores.add(a_store(uuid.uuid4()))

    async def test_pages_in_both_orders(self, uow_factory: UnitOfWorkFactory) -> None:
        ada, bob = await saved_user(uow_factory), await saved_user(uow_factory)
        stores = [a_store(ada.id, created_at=at(i)) for i in range(4)]
        await saved(uow_factory, *stores, a_store(bob.id))
        async with uow_factory() as uow:
            newest = await uow.vector_stores.list_by_owner(ada.id, limit=10)
            after = StorePageCursor(stores[1].created_at, stores[1].id)
            older = await uow.vector_stores.list_by_owner(ada.id, limit=10, after=after)
            newer = await uow.vector_stores.list_by_owner(ada.id, limit=1, newest_first=False, after=after)
        assert [s.id for s in newest] == [s.id for s in reversed(stores)]
        assert [s.id for s in older] == [stores[0].id]
        assert [s.id for s in newer] == [stores[2].id]

    async def test_deleting_a_store_deletes_its_files(self, uow_factory: UnitOfWorkFactory) -> None:
        ada = await saved_user(uow_factory)
        store, other = a_store(ada.id), a_store(ada.id)
        kept = a_file(other)
        await saved(uow_factory, store, other, files=(a_file(store), a_file(store), kept))
        async with uow_factory() as uow:
            await uow.vector_stores.delete(store.id)
            await uow.vector_stores.delete(store.id)  # twice is fine
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.vector_stores.find_owned(store.id, ada.id) is None
            assert await uow.vector_store_files.list_by_store(store.id, limit=10) == []
            assert await uow.vector_store_files.list_by_store(other.id, limit=10) == [kept]


class TestVectorStoreFileRepository:
    async def test_add_find_update_delete(self, uow_factory: UnitOfWorkFactory) -> None:
        ada = await saved_user(uow_factory)
        store = a_store(ada.id)
        file = a_file(store)
        await saved(uow_factory, store, files=(file,))
        async with uow_factory() as uow:
            assert await uow.vector_store_files.find(store.id, file.file_id) == file
            assert await uow.vector_store_files.find(uuid.uuid4(), file.file_id) is None
            file.fail(FileErrorCode.UNSUPPORTED_FILE, "no parser")
            await uow.vector_store_files.update(file)
            await uow.commit()
        async with uow_factory() as uow:
            found = await uow.vector_store_files.find(store.id, file.file_id)
            assert found == file
            assert found is not None
            assert (found.status, found.error_code, found.chunking) == (
                FileStatus.FAILED,
                FileErrorCode.UNSUPPORTED_FILE,
                ChunkingStrategy(300, 50, static=True),
            )
            await uow.vector_store_files.delete(store.id, file.file_id)
            await uow.vector_store_files.delete(store.id, file.file_id)
            with pytest.raises(NotFound):
                await uow.vector_store_files.update(file)
            with pytest.raises(NotFound):  # no such store
                await uow.vector_store_files.add(a_file(a_store(ada.id)))

    async def test_the_same_file_twice_in_a_store_is_refused(self, uow_factory: UnitOfWorkFactory) -> None:
        ada = await saved_user(uow_factory)
        store = a_store(ada.id)
        file = a_file(store)
        await saved(uow_factory, store, files=(file,))
        with pytest.raises(Exception):  # noqa: B017,PT011 (the adapters' own duplicate-key errors)
            await saved(uow_factory, files=(a_file(store, file_id=file.file_id),))

    async def test_counts_usage_and_pages_by_status(self, uow_factory: UnitOfWorkFactory) -> None:
        ada = await saved_user(uow_factory)
        store = a_store(ada.id)
        files = [a_file(store, created_at=at(i)) for i in range(4)]
        files[0].complete(100)
        files[1].complete(50)
        files[2].fail(FileErrorCode.SERVER_ERROR, "down")
        await saved(uow_factory, store, files=tuple(files))
        async with uow_factory() as uow:
            counts = await uow.vector_store_files.counts(store.id)
            usage = await uow.vector_store_files.usage_bytes(store.id)
            completed = await uow.vector_store_files.list_by_store(store.id, limit=10, status=FileStatus.COMPLETED)
            after = StorePageCursor(files[1].created_at, files[1].file_id)
            oldest_first = await uow.vector_store_files.list_by_store(
                store.id, limit=10, newest_first=False, after=after
            )
            empty = await uow.vector_store_files.counts(uuid.uuid4())
        assert counts == FileCounts(in_progress=1, completed=2, failed=1)
        assert counts.total == 4
        assert usage == 150
        assert [f.file_id for f in completed] == [files[1].file_id, files[0].file_id]
        assert [f.file_id for f in oldest_first] == [files[2].file_id, files[3].file_id]
        assert empty == FileCounts()

    async def test_files_in_progress_across_owners_oldest_first(self, uow_factory: UnitOfWorkFactory) -> None:
        ada, bob = await saved_user(uow_factory), await saved_user(uow_factory)
        mine, theirs = a_store(ada.id), a_store(bob.id)
        newer, older, done = a_file(mine, created_at=at(2)), a_file(theirs, created_at=at(1)), a_file(mine)
        done.complete(10)
        await saved(uow_factory, mine, theirs, files=(newer, older, done))
        async with uow_factory() as uow:
            found = [f.file_id for f in await uow.vector_store_files.list_in_progress(1000)]
            first = await uow.vector_store_files.list_in_progress(1)
        ours = {newer.file_id, older.file_id, done.file_id}
        assert [i for i in found if i in ours] == [older.file_id, newer.file_id]
        assert len(first) == 1
