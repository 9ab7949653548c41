"""The container picks the vector index adapter by the database URL, and closes it on shutdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.memory.vector_index import InMemoryVectorIndex
from infrastructure.vectors.pgvector import PgVectorIndex
from infrastructure.vectors.sqlite import SqliteVectorIndex
from interfaces.container import Container, close_resources
from tests.api.conftest import make_settings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("database_url", "adapter"),
    [
        ("memory://", InMemoryVectorIndex),
        ("sqlite+aiosqlite://", InMemoryVectorIndex),  # in-memory SQLite dies with the process like memory://
        ("sqlite+aiosqlite:///{tmp}/sb.db", SqliteVectorIndex),
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/unused", PgVectorIndex),
    ],
)
async def test_the_adapter_follows_the_database(database_url: str, adapter: type, tmp_path: Path) -> None:
    container = Container(settings=make_settings(database_url=database_url.format(tmp=tmp_path)))
    index = container.vector_index()
    assert type(index) is adapter
    assert container.vector_index() is index  # one per process
    await close_resources(container)


async def test_closing_drops_what_the_index_holds_in_memory() -> None:
    container = Container(settings=make_settings())
    index = container.vector_index()
    assert isinstance(index, InMemoryVectorIndex)
    index._files[(object(), object())] = ()  # type: ignore[index]
    await close_resources(container)
    assert index._files == {}
