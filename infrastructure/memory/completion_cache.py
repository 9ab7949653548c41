"""A bounded LRU response cache with a TTL per entry, for one process."""

from __future__ import annotations

import time
from collections import OrderedDict

from domain.llm.model import Completion
from domain.usage.ports import CompletionCache


class InMemoryCompletionCache(CompletionCache):
    def __init__(self, *, max_entries: int) -> None:
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[Completion, float]] = OrderedDict()

    async def get(self, key: str) -> Completion | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[0]

    async def put(self, key: str, completion: Completion, ttl_seconds: int) -> None:
        self._entries[key] = (completion, time.monotonic() + ttl_seconds)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
