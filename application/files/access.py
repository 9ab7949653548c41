"""What every files use case shares: the scope a caller needs, and finding a caller's live file."""

from __future__ import annotations

import uuid
from datetime import datetime

from application.auth.access import require_scope
from application.unit_of_work import UnitOfWork
from domain.auth.model import Principal, Scope
from domain.files.errors import FileNotFound
from domain.files.model import StoredFile, public_file_id

# Files feed batches of model calls: the scope that allows model calls allows them.
FILES_SCOPE = Scope.CHAT


def require_files_scope(principal: Principal) -> None:
    require_scope(principal, FILES_SCOPE)


async def live_file(uow: UnitOfWork, file_id: uuid.UUID, owner_id: uuid.UUID, now: datetime) -> StoredFile:
    """The owner's file unless it expired; someone else's file is as missing as a deleted one."""
    found = await uow.files.find_owned(file_id, owner_id)
    if found is None or not found.is_live(now):
        raise FileNotFound(f"no such file: '{public_file_id(file_id)}'")
    return found
