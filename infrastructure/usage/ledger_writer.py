"""Writing usage records to the ledger in batches, retried with capped exponential backoff. The insert is idempotent
on the record id, so a batch whose commit outcome was unknown (or that another process also wrote) is simply
written again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from application.unit_of_work import UnitOfWorkFactory
from domain.usage.model import UsageRecord

logger = logging.getLogger("switchboard.usage")


class LedgerWriter:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        batch_size: int = 1000,
        retry_base_seconds: float = 0.1,
        retry_max_seconds: float = 5.0,
    ) -> None:
        self._uow = uow
        self._batch_size = batch_size
        self._retry_base = retry_base_seconds
        self._retry_max = retry_max_seconds
        self.written = 0  # records stored so far (a record written twice counts twice)
        self.failures = 0  # batch writes that failed (and were retried or given up)

    async def store(
        self, records: Sequence[UsageRecord], *, attempts: int | None = None, deadline: float | None = None
    ) -> bool:
        """Writes ``records``, each batch in its own transaction, trying each batch up to ``attempts`` times and not
        past ``deadline`` (``None``: no such bound; with neither, until it succeeds). Whether all were stored."""
        for start in range(0, len(records), self._batch_size):
            batch = records[start : start + self._batch_size]
            attempt = 0
            while True:
                try:
                    async with self._uow() as uow:
                        await uow.usage.add_many(batch)
                        await uow.commit()
                except Exception as exc:
                    self.failures += 1
                    attempt += 1
                    out_of_time = deadline is not None and time.monotonic() >= deadline
                    if out_of_time or (attempts is not None and attempt >= attempts):
                        logger.warning("storing %d usage records failed (%r); left for later", len(batch), exc)
                        return False
                    delay = min(self._retry_max, self._retry_base * 2 ** (attempt - 1))
                    if deadline is not None:
                        delay = min(delay, max(0.0, deadline - time.monotonic()))
                    logger.warning("storing %d usage records failed (%r); retrying in %.1f s", len(batch), exc, delay)
                    await asyncio.sleep(delay)
                else:
                    self.written += len(batch)
                    break
        return True
