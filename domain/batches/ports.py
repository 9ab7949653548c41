"""Ports of the batches context: the repository of batches and their lines (the source of truth)."""

from __future__ import annotations

import abc
import uuid
from collections.abc import Sequence
from datetime import datetime

from domain.batches.model import Batch, BatchKind, BatchLine, BatchPageCursor, LineResult, LineStatus


class BatchRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, batch: Batch) -> None: ...

    @abc.abstractmethod
    async def get(self, batch_id: uuid.UUID, *, lock: bool = False, counts: bool = True) -> Batch:
        """The batch with its line counts (``counts=False``: without, empty counts, cheaper); ``lock`` holds it
        until the transaction ends (other lockers wait). Raises ``BatchNotFound``."""

    @abc.abstractmethod
    async def find_owned(self, batch_id: uuid.UUID, owner_id: uuid.UUID, kind: BatchKind) -> Batch | None:
        """The owner's batch of that kind, with its line counts; ``None`` for someone else's."""

    @abc.abstractmethod
    async def list_page(
        self,
        *,
        owner_id: uuid.UUID | None,
        kind: BatchKind | None,
        limit: int,
        after: BatchPageCursor | None = None,
        before: BatchPageCursor | None = None,
    ) -> list[Batch]:
        """Newest first, with line counts; every owner's when ``owner_id`` is ``None``. ``after``: the ``limit``
        batches just older than it; ``before``: the ``limit`` batches just newer than it."""

    @abc.abstractmethod
    async def update(self, batch: Batch) -> None: ...

    @abc.abstractmethod
    async def delete(self, batch_id: uuid.UUID) -> None:
        """The batch and its lines (the usage records that name it stay: they are the bill)."""

    @abc.abstractmethod
    async def list_unfinished(self) -> list[uuid.UUID]:
        """Batches not ended yet (for the workers to pick up after a restart)."""

    @abc.abstractmethod
    async def add_lines(self, lines: Sequence[BatchLine]) -> None: ...

    @abc.abstractmethod
    async def claim_lines(
        self, batch_id: uuid.UUID, *, now: datetime, until: datetime, claim_id: uuid.UUID, limit: int
    ) -> list[BatchLine]:
        """Up to ``limit`` open lines nobody holds at ``now`` (pending, or running with a lease that ran out), in
        order, now ``RUNNING`` under ``claim_id`` until ``until``. Concurrent claimers never get the same line."""

    @abc.abstractmethod
    async def finish_line(self, line_id: uuid.UUID, claim_id: uuid.UUID, result: LineResult, at: datetime) -> bool:
        """Writes a line's result if ``claim_id`` still holds it; ``False`` (nothing written) otherwise."""

    @abc.abstractmethod
    async def release_line(self, line_id: uuid.UUID, claim_id: uuid.UUID, *, until: datetime) -> None:
        """Gives a held line back, pending, to be claimed again from ``until`` on (a rate limit's wait)."""

    @abc.abstractmethod
    async def close_open_lines(
        self, batch_id: uuid.UUID, result: LineResult, at: datetime, *, include_running: bool = False
    ) -> int:
        """Ends the batch's pending lines (and running ones, if asked) with ``result``; how many."""

    @abc.abstractmethod
    async def open_lines(self, batch_id: uuid.UUID) -> tuple[int, datetime | None]:
        """How many lines are still open, and the earliest time one held or waiting can be claimed again."""

    @abc.abstractmethod
    async def list_lines(
        self, batch_id: uuid.UUID, *, after_index: int, limit: int, statuses: Sequence[LineStatus] | None = None
    ) -> list[BatchLine]:
        """Lines in order, from ``after_index + 1``."""
