"""A page of the caller's live files, in OpenAI's cursor style (``after`` a file id)."""

from __future__ import annotations

from dataclasses import dataclass

from application.files.access import live_file, require_files_scope
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal
from domain.files.model import FilePageCursor, FilePurpose, StoredFile, parse_file_id
from domain.shared.clock import Clock
from domain.shared.errors import RuleViolation

MAX_LIMIT = 10_000


@dataclass(frozen=True, kw_only=True)
class ListFilesQuery:
    principal: Principal
    limit: int = MAX_LIMIT
    newest_first: bool = True
    purpose: str | None = None
    after: str | None = None


@dataclass(frozen=True)
class FilePage:
    files: list[StoredFile]
    has_more: bool


class ListFiles:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, query: ListFilesQuery) -> FilePage:
        require_files_scope(query.principal)
        if not 1 <= query.limit <= MAX_LIMIT:
            raise RuleViolation(f"limit: must be between 1 and {MAX_LIMIT}")
        purpose = _purpose(query.purpose)
        owner, now = query.principal.user_id, self._clock.now()
        async with self._uow() as uow:
            cursor = None
            if query.after is not None:
                after = await live_file(uow, parse_file_id(query.after), owner, now)
                cursor = FilePageCursor(created_at=after.created_at, id=after.id)
            files = await uow.files.list_by_owner(
                owner, now=now, limit=query.limit + 1, newest_first=query.newest_first, purpose=purpose, after=cursor
            )
        return FilePage(files=files[: query.limit], has_more=len(files) > query.limit)


def _purpose(value: str | None) -> FilePurpose | None:
    if value is None:
        return None
    try:
        return FilePurpose(value)
    except ValueError:
        raise RuleViolation(f"purpose: '{value[:50]}' is not a file purpose") from None
