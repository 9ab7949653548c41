"""The audit trail's repository port."""

from __future__ import annotations

import abc

from domain.audit.model import AuditEntry


class AuditLog(abc.ABC):
    """Append-only: entries are added in the transaction of the change they describe, never updated or deleted."""

    @abc.abstractmethod
    async def add(self, entry: AuditEntry) -> None: ...

    @abc.abstractmethod
    async def list_by_target(self, target_type: str, target_id: str, *, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""
