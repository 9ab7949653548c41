"""The files use cases on in-memory adapters: what reaches the blob store, and when it leaves it."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from application.files.delete_file import DeleteFile
from application.files.get_file import FileQuery, GetFileContent
from application.files.upload_file import UploadFile, UploadFileCommand
from domain.auth.model import Scope
from domain.files.errors import FileNotFound, FileTooLarge
from domain.shared.errors import Forbidden, NotFound
from infrastructure.db.repositories.files import SqlAlchemyBlobStore
from infrastructure.files.filesystem import FilesystemBlobStore
from infrastructure.memory.files import InMemoryBlobStore
from interfaces.container import _blob_store
from tests.api.conftest import make_settings
from tests.unit.conftest import Env

pytestmark = pytest.mark.unit


def upload(env: Env, blobs: InMemoryBlobStore, max_bytes: int = 100) -> UploadFile:
    return UploadFile(uow=env.uow, blobs=blobs, clock=env.clock, max_bytes=max_bytes)


async def test_the_bytes_go_to_the_blob_store_and_come_back(env: Env) -> None:
    blobs = InMemoryBlobStore()
    principal = await env.principal("ada@example.com")
    file = await upload(env, blobs).execute(
        UploadFileCommand(principal=principal, filename=" in.jsonl ", purpose="batch", content=b"{}\n")
    )
    content = GetFileContent(uow=env.uow, blobs=blobs, clock=env.clock)

    assert file.filename == "in.jsonl"
    assert blobs.blobs == {str(file.id): b"{}\n"}
    assert (await content.execute(FileQuery(principal, file.id)))[1] == b"{}\n"

    await DeleteFile(uow=env.uow, blobs=blobs, clock=env.clock).execute(FileQuery(principal, file.id))
    assert blobs.blobs == {}
    with pytest.raises(FileNotFound):
        await content.execute(FileQuery(principal, file.id))


async def test_a_failed_commit_leaves_no_blob(env: Env) -> None:
    blobs = InMemoryBlobStore()
    principal = await env.principal("ada@example.com")
    ghost = replace(principal, user_id=uuid.uuid4())  # no such user: the metadata cannot be stored
    with pytest.raises(NotFound):
        await upload(env, blobs).execute(
            UploadFileCommand(principal=ghost, filename="a", purpose="batch", content=b"x")
        )
    assert blobs.blobs == {}


async def test_too_large_and_unscoped_uploads_store_nothing(env: Env) -> None:
    blobs = InMemoryBlobStore()
    principal = await env.principal("ada@example.com")
    with pytest.raises(FileTooLarge, match="101 bytes, above the limit of 100 bytes"):
        await upload(env, blobs).execute(
            UploadFileCommand(principal=principal, filename="a", purpose="batch", content=b"x" * 101)
        )
    unscoped = replace(principal, scopes=frozenset({Scope.MODELS}))
    with pytest.raises(Forbidden):
        await upload(env, blobs).execute(
            UploadFileCommand(principal=unscoped, filename="a", purpose="batch", content=b"x")
        )
    assert blobs.blobs == {}


async def test_expired_files_are_purged_with_their_blobs_on_the_owners_next_upload(env: Env) -> None:
    blobs = InMemoryBlobStore()
    principal = await env.principal("ada@example.com")
    command = UploadFileCommand(
        principal=principal, filename="a", purpose="batch", content=b"x", expires_after_seconds=3600
    )
    old = await upload(env, blobs).execute(command)
    env.clock.advance(seconds=3601)
    new = await upload(env, blobs).execute(replace(command, expires_after_seconds=None))

    assert set(blobs.blobs) == {str(new.id)}
    assert old.id not in env.uow.store.files


def test_auto_file_storage_is_a_directory_for_sqlite_and_the_database_otherwise(tmp_path: Path) -> None:
    sqlite_url = f"sqlite+aiosqlite:///{tmp_path}/switchboard.db"
    sqlite = create_async_engine(sqlite_url)
    postgres = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1/none")
    beside = _blob_store(make_settings(database_url=sqlite_url), sqlite)

    assert isinstance(beside, FilesystemBlobStore)
    assert beside._directory == tmp_path / "files"
    assert isinstance(_blob_store(make_settings(), postgres), SqlAlchemyBlobStore)
    assert isinstance(_blob_store(make_settings(), None), InMemoryBlobStore)
    chosen = _blob_store(make_settings(file_storage="filesystem", file_storage_path=tmp_path / "x"), postgres)
    assert isinstance(chosen, FilesystemBlobStore)
