from __future__ import annotations

from application.auth.access import require_admin
from application.unit_of_work import UnitOfWorkFactory
from application.usage.get_usage import GetUsageCommand, UsageReport, usage_query, usage_report
from domain.shared.clock import Clock


class GetAllUsage:
    """Usage across users (or of one, with ``user_id``), for administrators; groups may be per user."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, command: GetUsageCommand) -> UsageReport:
        require_admin(command.principal)
        query = usage_query(command, self._clock.now(), user_id=command.user_id)
        totals, groups = await usage_report(self._uow, query)
        return UsageReport(since=query.since, until=query.until, totals=totals, groups=groups, budgets=[])
