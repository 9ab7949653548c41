"""Repository port of the responses context."""

from __future__ import annotations

import abc
import uuid

from domain.responses.model import ResponseRecord, ResponseStatus


class ResponseRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, record: ResponseRecord) -> None: ...

    @abc.abstractmethod
    async def get_owned(self, response_id: uuid.UUID, owner_id: uuid.UUID) -> ResponseRecord:
        """Raises ``ResponseNotFound`` when missing or owned by someone else: the two must look the same."""

    @abc.abstractmethod
    async def find(self, response_id: uuid.UUID) -> ResponseRecord | None:
        """Whoever owns it (for the jobs that run background responses)."""

    @abc.abstractmethod
    async def update_if(self, record: ResponseRecord, status: ResponseStatus) -> bool:
        """``update``, only while the stored response is still in ``status`` (one atomic statement): ``False``
        when it is not (someone else moved it on, or it is gone). Claims and cancels are made of it."""

    @abc.abstractmethod
    async def list_unfinished_background(self, limit: int) -> list[ResponseRecord]:
        """Background responses still queued or in progress, oldest first."""

    @abc.abstractmethod
    async def update(self, record: ResponseRecord) -> None:
        """Everything but the id, the owner and the creation time; ``ResponseNotFound`` when it is gone."""

    @abc.abstractmethod
    async def delete_owned(self, response_id: uuid.UUID, owner_id: uuid.UUID) -> None:
        """Raises ``ResponseNotFound`` when missing or owned by someone else."""
