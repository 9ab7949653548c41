"""SQLAlchemy adapter of the audit trail."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit.model import AuditEntry
from domain.audit.ports import AuditLog
from infrastructure.db.mapping import audit_entry_from_row, audit_entry_values
from infrastructure.db.repositories.base import SqlAlchemyRepository
from infrastructure.db.tables import audit_log


class SqlAlchemyAuditLog(SqlAlchemyRepository, AuditLog):
    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self.added: list[AuditEntry] = []  # published by the unit of work after its commit

    async def add(self, entry: AuditEntry) -> None:
        await self._session.execute(insert(audit_log).values(audit_entry_values(entry)))
        self.added.append(entry)

    async def list_by_target(self, target_type: str, target_id: str, *, limit: int = 100) -> list[AuditEntry]:
        statement = (
            select(audit_log)
            .where(audit_log.c.target_type == target_type, audit_log.c.target_id == target_id)
            .order_by(audit_log.c.occurred_at.desc(), audit_log.c.id.desc())
            .limit(limit)
        )
        return [audit_entry_from_row(row) for row in (await self._session.execute(statement)).mappings()]
