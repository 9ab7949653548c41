"""A page of the caller's vector stores, in OpenAI's cursor style (``after`` / ``before`` a store id)."""

from __future__ import annotations

from dataclasses import dataclass

from application.unit_of_work import UnitOfWorkFactory
from application.vectors.access import StoreView, owned_store, require_vectors_scope, view
from domain.auth.model import Principal
from domain.shared.clock import Clock
from domain.shared.errors import RuleViolation
from domain.vectors.stores import StorePageCursor, parse_store_id

MAX_LIMIT = 100


@dataclass(frozen=True, kw_only=True)
class ListVectorStoresQuery:
    principal: Principal
    limit: int = 20
    newest_first: bool = True
    after: str | None = None
    before: str | None = None


@dataclass(frozen=True)
class StorePage:
    stores: list[StoreView]
    has_more: bool


class ListVectorStores:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, query: ListVectorStoresQuery) -> StorePage:
        require_vectors_scope(query.principal)
        check_limit(query.limit)
        owner, now = query.principal.user_id, self._clock.now()
        # ``before`` is ``after`` in the other order, the page turned back round.
        backwards = query.before is not None and query.after is None
        anchor = query.before if backwards else query.after
        newest_first = query.newest_first != backwards
        async with self._uow() as uow:
            cursor = None
            if anchor is not None:
                at = await owned_store(uow, parse_store_id(anchor), owner)
                cursor = StorePageCursor(at.created_at, at.id)
            rows = await uow.vector_stores.list_by_owner(
                owner, limit=query.limit + 1, newest_first=newest_first, after=cursor
            )
            page = [await view(uow, store, now) for store in rows[: query.limit]]
        return StorePage(page[::-1] if backwards else page, len(rows) > query.limit)


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise RuleViolation(f"limit: must be between 1 and {MAX_LIMIT}")
