"""The in-process denylist of logged-out sessions: entries live as long as an access token, then go."""

from __future__ import annotations

import pytest

from domain.shared.ids import new_id
from infrastructure.memory.session_revocations import InMemorySessionRevocations

pytestmark = pytest.mark.unit


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_revoked_session_is_refused_until_its_tokens_could_have_expired_then_forgotten() -> None:
    clock = Monotonic()
    sessions = InMemorySessionRevocations(ttl_seconds=910, monotonic=clock)
    revoked, other = new_id(), new_id()
    await sessions.revoke(revoked)
    assert sessions.is_revoked(revoked)
    assert not sessions.is_revoked(other)
    clock.now += 909
    assert sessions.is_revoked(revoked)
    clock.now += 1
    assert not sessions.is_revoked(revoked)
    assert len(sessions) == 0  # forgotten, not only ignored


async def test_expired_entries_are_dropped_as_new_ones_come_so_memory_stays_bounded() -> None:
    clock = Monotonic()
    sessions = InMemorySessionRevocations(ttl_seconds=10, monotonic=clock)
    for _ in range(100):
        await sessions.revoke(new_id())
        clock.now += 1
    assert len(sessions) == 10


async def test_remembering_again_never_shortens_an_entry() -> None:
    clock = Monotonic()
    sessions = InMemorySessionRevocations(ttl_seconds=100, monotonic=clock)
    session = new_id()
    await sessions.revoke(session)
    sessions.remember(session, 5)  # heard again from Redis with what is left of its key
    clock.now += 50
    assert sessions.is_revoked(session)
