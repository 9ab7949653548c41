"""Security events: authentication failures, refused access and admin changes, as log lines operators can alert on.

Each line has ``category="security"`` and an ``event`` name (``auth.failed``, ``access.denied``, ``admin.change``).
Admin changes are also rows of the audit trail; these lines are published only after that row is committed.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.audit.model import AuditEntry
from infrastructure.observability.logging import get_logger


class SecurityLog:
    def __init__(self) -> None:
        self._log = get_logger("switchboard.security")

    def auth_failed(self, *, reason: str, code: str, client: str | None) -> None:
        self._log.warning("auth.failed", category="security", reason=reason, code=code, client=client)

    def access_denied(self, *, reason: str, client: str | None) -> None:
        self._log.warning("access.denied", category="security", reason=reason, client=client)

    def admin_changes(self, entries: Sequence[AuditEntry]) -> None:
        for entry in entries:
            self._log.info(
                "admin.change",
                category="security",
                action=entry.action,
                actor_id=str(entry.actor_id),
                actor_api_key_id=str(entry.actor_api_key_id) if entry.actor_api_key_id else None,
                target_type=entry.target_type,
                target_id=entry.target_id,
                before=entry.before,
                after=entry.after,
                audit_id=str(entry.id),
            )
