"""What message batches add to the batch repository, the same on memory, SQLite and PostgreSQL: pages newer than a
batch (Anthropic's ``before_id``), and deleting a batch with its lines."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from application.unit_of_work import UnitOfWorkFactory
from domain.batches.errors import BatchNotFound
from domain.batches.model import BatchKind, BatchPageCursor
from tests.contract.test_batch_repository import NOW, setup

pytestmark = pytest.mark.contract


async def test_a_page_before_a_batch_holds_the_newer_ones_closest_to_it(uow_factory: UnitOfWorkFactory) -> None:
    batches = [await setup(uow_factory, lines=1, at=NOW + timedelta(seconds=i)) for i in range(5)]
    cursor = BatchPageCursor(batches[1].created_at, batches[1].id)
    async with uow_factory() as uow:
        newer = await uow.batches.list_page(owner_id=None, kind=BatchKind.OPENAI, limit=2, before=cursor)
        assert [b.id for b in newer] == [batches[3].id, batches[2].id]  # newest first, the two just after it
        assert [b.counts.total for b in newer] == [1, 1]
        everything_newer = await uow.batches.list_page(owner_id=None, kind=None, limit=10, before=cursor)
        assert [b.id for b in everything_newer][-3:] == [batches[4].id, batches[3].id, batches[2].id]
        assert batches[1].id not in [b.id for b in everything_newer]
        assert await uow.batches.list_page(owner_id=uuid.uuid4(), kind=None, limit=10, before=cursor) == []


async def test_deleting_a_batch_takes_its_lines(uow_factory: UnitOfWorkFactory) -> None:
    kept = await setup(uow_factory, lines=2)
    gone = await setup(uow_factory, lines=3)
    async with uow_factory() as uow:
        await uow.batches.delete(gone.id)
        await uow.commit()
    async with uow_factory() as uow:
        with pytest.raises(BatchNotFound):
            await uow.batches.get(gone.id)
        assert await uow.batches.list_lines(gone.id, after_index=-1, limit=10) == []
        assert (await uow.batches.get(kept.id)).counts.total == 2
        assert len(await uow.batches.list_lines(kept.id, after_index=-1, limit=10)) == 2
