"""Upload a file: its bytes to the blob store, then its metadata in one commit."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

from application.files.access import require_files_scope
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal
from domain.files.errors import FileTooLarge
from domain.files.model import (
    MAX_EXPIRY_SECONDS,
    MAX_FILENAME_LENGTH,
    MIN_EXPIRY_SECONDS,
    UPLOADABLE_PURPOSES,
    FilePurpose,
    StoredFile,
)
from domain.files.ports import BlobStore
from domain.shared.clock import Clock
from domain.shared.errors import RuleViolation

EXPIRY_ANCHOR = "created_at"


@dataclass(frozen=True, kw_only=True)
class UploadFileCommand:
    principal: Principal
    filename: str
    purpose: str
    content: bytes
    expires_after_seconds: int | None = None
    expires_after_anchor: str | None = None


class UploadFile:
    def __init__(self, *, uow: UnitOfWorkFactory, blobs: BlobStore, clock: Clock, max_bytes: int) -> None:
        self._uow = uow
        self._blobs = blobs
        self._clock = clock
        self._max_bytes = max_bytes

    async def execute(self, command: UploadFileCommand) -> StoredFile:
        require_files_scope(command.principal)
        file = self._new_file(command)
        # The bytes first: metadata never points at a blob that is not there. A failed commit removes the blob.
        await self._blobs.put(str(file.id), command.content)
        try:
            async with self._uow() as uow:
                expired = await uow.files.delete_expired(file.owner_id, file.created_at)
                await uow.files.add(file)
                await uow.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await self._blobs.delete(str(file.id))
            raise
        for file_id in expired:  # the owner's expired files, purged on the way
            await self._blobs.delete(str(file_id))
        return file

    def _new_file(self, command: UploadFileCommand) -> StoredFile:
        if len(command.content) > self._max_bytes:
            raise FileTooLarge(f"file: {len(command.content)} bytes, above the limit of {self._max_bytes} bytes")
        filename = command.filename.strip()
        if not filename or len(filename) > MAX_FILENAME_LENGTH:
            raise RuleViolation(f"file: a file name of 1 to {MAX_FILENAME_LENGTH} characters is required")
        now = self._clock.now()
        return StoredFile(
            id=uuid.uuid4(),
            owner_id=command.principal.user_id,
            filename=filename,
            purpose=_purpose(command.purpose),
            size_bytes=len(command.content),
            created_at=now,
            expires_at=None if command.expires_after_seconds is None else now + _expiry(command),
        )


def _purpose(value: str) -> FilePurpose:
    if value not in {p.value for p in UPLOADABLE_PURPOSES}:
        allowed = ", ".join(p.value for p in UPLOADABLE_PURPOSES)
        raise RuleViolation(f"purpose: '{value[:50]}' is not one of {allowed}")
    return FilePurpose(value)


def _expiry(command: UploadFileCommand) -> timedelta:
    if command.expires_after_anchor not in (None, EXPIRY_ANCHOR):
        raise RuleViolation(f"expires_after[anchor]: must be '{EXPIRY_ANCHOR}'")
    seconds = command.expires_after_seconds or 0
    if not MIN_EXPIRY_SECONDS <= seconds <= MAX_EXPIRY_SECONDS:
        raise RuleViolation(f"expires_after[seconds]: must be between {MIN_EXPIRY_SECONDS} and {MAX_EXPIRY_SECONDS}")
    return timedelta(seconds=seconds)
