"""Database round trips of a conversation message on PostgreSQL: the statements SQLAlchemy executes, and the
transaction control asyncpg sends by itself (BEGIN, COMMIT, ROLLBACK, seen by its query logger). The path a chat
application lives on stays at two."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.api.conftest import make_settings, running_api

pytestmark = pytest.mark.integration


@contextmanager
def queries_sent() -> Iterator[list[str]]:
    """The text of every statement and transaction command sent meanwhile, in order."""
    sent: list[str] = []
    watched: set[int] = set()

    def log(query: Any) -> None:  # asyncpg logs its unprepared queries only: the transaction commands
        sent.append(" ".join(query.query.split()))

    def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if id(driver) not in watched:
            watched.add(id(driver))
            driver.add_query_logger(log)

    def statement(_conn: Any, _cursor: Any, text: str, *_: Any) -> None:
        sent.append(" ".join(text.split()))

    event.listen(Engine, "checkout", checkout)
    event.listen(Engine, "before_cursor_execute", statement)
    try:
        yield sent
    finally:
        event.remove(Engine, "checkout", checkout)
        event.remove(Engine, "before_cursor_execute", statement)


async def test_a_conversation_message_is_two_round_trips_outside_transactions(postgres_url: str) -> None:
    # Usage records are written by the ledger writer in the background: not within this test's few milliseconds.
    settings = make_settings(database_url=postgres_url, usage_flush_interval_seconds=600)
    async with running_api(settings) as api:
        user = await api.user(f"trips-{uuid.uuid4().hex[:8]}@example.com")
        key = (await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=user)).json()["key"]
        as_key = {"Authorization": f"Bearer {key}"}
        cid = (await api.http.post("/api/v1/conversations", json={}, headers=as_key)).json()["id"]
        path = f"/api/v1/conversations/{cid}/messages"
        assert (await api.http.post(path, json={"content": "warm up"}, headers=as_key)).status_code == 201
        with queries_sent() as sent:
            posted = await api.http.post(path, json={"content": "counted"}, headers=as_key)
        assert posted.status_code == 201, posted.text
        assert posted.json()["user_message"]["content"] == "counted"
        assert len(sent) == 2, sent
        read, write = sent
        assert read.startswith("SELECT")
        assert "FROM conversations LEFT OUTER JOIN messages" in read
        assert write.startswith("WITH touched AS (UPDATE conversations")
        assert "INSERT INTO messages" in write
        assert not any(q.split()[0].upper() in ("BEGIN", "COMMIT", "ROLLBACK") for q in sent)
