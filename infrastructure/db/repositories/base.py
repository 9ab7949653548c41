"""What every SQLAlchemy repository shares: the session it works in and a few statement helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import CursorResult, Executable
from sqlalchemy.ext.asyncio import AsyncSession


class SqlAlchemyRepository:
    """Runs Core statements in the unit of work's session. Never commits, never opens a session.

    Statements run at once (there is no ORM flush to wait for), so constraint errors surface inside the use
    case's transaction, at the call that caused them.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _rowcount(self, statement: Executable) -> int:
        result: CursorResult[Any] = await self._session.execute(statement)  # type: ignore[assignment]
        return result.rowcount

    @asynccontextmanager
    async def _recoverable(self) -> AsyncIterator[None]:
        """Keeps the transaction usable when the statement inside fails and is translated into a domain error.

        PostgreSQL aborts the whole transaction on a failed statement, so the statement runs in a savepoint
        there. SQLite rolls back only the failed statement, and its driver's savepoint handling is
        unreliable, so no savepoint is taken.
        """
        if self._session.get_bind().dialect.name == "postgresql":
            async with self._session.begin_nested():
                yield
        else:
            yield
