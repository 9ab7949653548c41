"""The files repository and every blob store behave the same on every adapter."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from application.unit_of_work import UnitOfWorkFactory
from domain.files.errors import FileNotFound
from domain.files.model import FilePageCursor, FilePurpose, StoredFile
from domain.files.ports import BlobStore
from domain.shared.errors import NotFound
from infrastructure.db.repositories.files import SqlAlchemyBlobStore
from infrastructure.files.filesystem import FilesystemBlobStore
from infrastructure.memory.files import InMemoryBlobStore
from tests.contract.test_repositories import T0, at, saved_user

pytestmark = pytest.mark.contract


def a_file(owner_id: uuid.UUID, **overrides: Any) -> StoredFile:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "owner_id": owner_id,
        "filename": "input.jsonl",
        "purpose": FilePurpose.BATCH,
        "size_bytes": 123,
        "created_at": T0,
    }
    return StoredFile(**(values | overrides))


async def saved_files(uow_factory: UnitOfWorkFactory, *files: StoredFile) -> None:
    async with uow_factory() as uow:
        for file in files:
            await uow.files.add(file)
        await uow.commit()


class TestFileRepository:
    async def test_add_find_delete_owner_scoped(self, uow_factory: UnitOfWorkFactory) -> None:
        ada, bob = await saved_user(uow_factory), await saved_user(uow_factory)
        file = a_file(ada.id, expires_at=at(3600))
        await saved_files(uow_factory, file)
        async with uow_factory() as uow:
            assert await uow.files.find_owned(file.id, ada.id) == file
            assert await uow.files.find_owned(file.id, bob.id) is None
            await uow.files.delete(file.id)
            await uow.files.delete(file.id)  # twice is fine
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.files.find_owned(file.id, ada.id) is None

    async def test_an_unknown_owner_is_not_found(self, uow_factory: UnitOfWorkFactory) -> None:
        async with uow_factory() as uow:
            with pytest.raises(NotFound):
                await uow.files.add(a_file(uuid.uuid4()))

    async def test_pages_in_either_order_by_purpose_without_expired(self, uow_factory: UnitOfWorkFactory) -> None:
        owner, other = await saved_user(uow_factory), await saved_user(uow_factory)
        files = [a_file(owner.id, created_at=at(i)) for i in range(5)]
        extra = [
            a_file(owner.id, created_at=at(9), purpose=FilePurpose.USER_DATA),
            a_file(owner.id, created_at=at(10), expires_at=at(50)),
            a_file(other.id, created_at=at(11)),
        ]
        await saved_files(uow_factory, *files, *extra)
        async with uow_factory() as uow:
            batch = await uow.files.list_by_owner(owner.id, now=at(100), limit=10, purpose=FilePurpose.BATCH)
            assert batch == list(reversed(files))
            everything = await uow.files.list_by_owner(owner.id, now=at(20), limit=10)
            assert [f.id for f in everything] == [extra[1].id, extra[0].id] + [f.id for f in reversed(files)]
            cursor = FilePageCursor(created_at=files[1].created_at, id=files[1].id)
            older = await uow.files.list_by_owner(owner.id, now=at(100), limit=10, after=cursor)
            assert older == [files[0]]
            newer = await uow.files.list_by_owner(owner.id, now=at(100), limit=2, newest_first=False, after=cursor)
            assert newer == files[2:4]

    async def test_delete_expired_returns_the_ids(self, uow_factory: UnitOfWorkFactory) -> None:
        owner, other = await saved_user(uow_factory), await saved_user(uow_factory)
        gone, kept, forever = a_file(owner.id, expires_at=at(10)), a_file(owner.id, expires_at=at(99)), a_file(owner.id)
        others = a_file(other.id, expires_at=at(10))
        await saved_files(uow_factory, gone, kept, forever, others)
        async with uow_factory() as uow:
            assert await uow.files.delete_expired(owner.id, at(50)) == [gone.id]
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.files.find_owned(gone.id, owner.id) is None
            assert await uow.files.find_owned(kept.id, owner.id) == kept
            assert await uow.files.find_owned(others.id, other.id) == others


@pytest.fixture(params=["memory", "filesystem", "sqlite", "postgres"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "memory":
        return InMemoryBlobStore()
    if request.param == "filesystem":
        return FilesystemBlobStore(tmp_path / "blobs")
    return SqlAlchemyBlobStore(request.getfixturevalue(f"{request.param}_session_factory"))


class TestBlobStore:
    async def test_put_get_replace_delete(self, blob_store: BlobStore) -> None:
        key = uuid.uuid4().hex
        data = bytes(range(256)) * 100
        await blob_store.put(key, data)
        assert await blob_store.get(key) == data
        await blob_store.put(key, b"second")
        assert await blob_store.get(key) == b"second"
        await blob_store.delete(key)
        await blob_store.delete(key)  # twice is fine
        with pytest.raises(FileNotFound):
            await blob_store.get(key)

    async def test_an_empty_blob_is_a_blob(self, blob_store: BlobStore) -> None:
        await blob_store.put("empty", b"")
        assert await blob_store.get("empty") == b""


async def test_the_filesystem_store_refuses_keys_that_leave_its_directory(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.put("../escape", b"x")
    assert not (tmp_path / "escape").exists()
