"""SQLAlchemy adapter of the files repository, and the database as a blob store."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, delete, insert, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.files.errors import FileNotFound
from domain.files.model import FilePageCursor, FilePurpose, StoredFile
from domain.files.ports import BlobStore, FileRepository
from domain.shared.errors import NotFound
from infrastructure.db.errors import is_foreign_key_violation
from infrastructure.db.mapping import file_from_row, file_values
from infrastructure.db.repositories.base import SqlAlchemyRepository
from infrastructure.db.tables import file_blobs, files


class SqlAlchemyFileRepository(SqlAlchemyRepository, FileRepository):
    async def add(self, file: StoredFile) -> None:
        try:
            async with self._recoverable():
                await self._session.execute(insert(files).values(file_values(file)))
        except IntegrityError as exc:
            if is_foreign_key_violation(exc):
                raise NotFound(f"user {file.owner_id} not found") from exc
            raise

    async def find_owned(self, file_id: uuid.UUID, owner_id: uuid.UUID) -> StoredFile | None:
        statement = select(files).where(files.c.id == file_id, files.c.owner_id == owner_id)
        row = (await self._session.execute(statement)).mappings().first()
        return file_from_row(row) if row is not None else None

    async def list_by_owner(
        self,
        owner_id: uuid.UUID,
        *,
        now: datetime,
        limit: int,
        newest_first: bool = True,
        purpose: FilePurpose | None = None,
        after: FilePageCursor | None = None,
    ) -> list[StoredFile]:
        statement = select(files).where(
            files.c.owner_id == owner_id, or_(files.c.expires_at.is_(None), files.c.expires_at > now)
        )
        if purpose is not None:
            statement = statement.where(files.c.purpose == purpose.value)
        if after is not None:
            position, cursor = tuple_(files.c.created_at, files.c.id), tuple_(after.created_at, after.id)
            statement = statement.where(position < cursor if newest_first else position > cursor)
        order = (files.c.created_at.desc(), files.c.id.desc()) if newest_first else (files.c.created_at, files.c.id)
        rows = (await self._session.execute(statement.order_by(*order).limit(max(limit, 0)))).mappings()
        return [file_from_row(row) for row in rows]

    async def delete(self, file_id: uuid.UUID) -> None:
        await self._session.execute(delete(files).where(files.c.id == file_id))

    async def delete_expired(self, owner_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
        expired = and_(files.c.owner_id == owner_id, files.c.expires_at.is_not(None), files.c.expires_at <= now)
        ids = list((await self._session.execute(select(files.c.id).where(expired))).scalars())
        if ids:
            await self._session.execute(delete(files).where(files.c.id.in_(ids)))
        return ids


class SqlAlchemyBlobStore(BlobStore):
    """Blobs in the ``file_blobs`` table: every instance reads them, with no storage besides the database. Each
    call is its own short transaction (a blob is written before the metadata that names it)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    async def put(self, key: str, data: bytes) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(file_blobs).where(file_blobs.c.key == key))
            await session.execute(insert(file_blobs).values(key=key, data=data))

    async def get(self, key: str) -> bytes:
        async with self._sessions() as session:
            data = (await session.execute(select(file_blobs.c.data).where(file_blobs.c.key == key))).scalar()
        if data is None:
            raise FileNotFound(f"no content for file {key}")
        return bytes(data)

    async def delete(self, key: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(file_blobs).where(file_blobs.c.key == key))
