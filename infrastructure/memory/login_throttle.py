"""Log-in throttling in process memory: right for one process; several processes each count on their own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.auth.ports import LoginAttempt, LoginThrottle
from domain.shared.clock import Clock

MAX_TRACKED_KEYS = 100_000  # a spray of random emails cannot grow this without bound


@dataclass
class _Window:
    started: datetime
    failures: int = 0


class InMemoryLoginThrottle(LoginThrottle):
    """Fixed windows: the first failure opens a window of ``window_seconds``; at ``limit`` failures in it the key is
    refused until the window ends."""

    def __init__(self, *, clock: Clock, max_per_account: int, max_per_address: int, window_seconds: float) -> None:
        self._clock = clock
        self._limits = {"account": max_per_account, "address": max_per_address}
        self._window = timedelta(seconds=window_seconds)
        self._windows: dict[tuple[str, str], _Window] = {}

    def _keys(self, attempt: LoginAttempt) -> list[tuple[str, str]]:
        keys = [("account", attempt.account)]
        if attempt.client_address:
            keys.append(("address", attempt.client_address))
        return keys

    def _current(self, key: tuple[str, str], now: datetime) -> _Window | None:
        window = self._windows.get(key)
        if window is not None and now - window.started >= self._window:
            del self._windows[key]
            return None
        return window

    async def retry_after(self, attempt: LoginAttempt) -> float | None:
        now = self._clock.now()
        waits = []
        for key in self._keys(attempt):
            window = self._current(key, now)
            if window is not None and window.failures >= self._limits[key[0]]:
                waits.append((window.started + self._window - now).total_seconds())
        return max(waits) if waits else None

    async def record_failure(self, attempt: LoginAttempt) -> None:
        now = self._clock.now()
        if len(self._windows) >= MAX_TRACKED_KEYS:
            self._prune(now)
        for key in self._keys(attempt):
            window = self._current(key, now)
            if window is None:
                window = self._windows[key] = _Window(started=now)
            window.failures += 1

    async def record_success(self, attempt: LoginAttempt) -> None:
        self._windows.pop(("account", attempt.account), None)

    def _prune(self, now: datetime) -> None:
        for key in [k for k, w in self._windows.items() if now - w.started >= self._window]:
            del self._windows[key]
        while len(self._windows) >= MAX_TRACKED_KEYS:  # still full of live windows: forget the oldest
            del self._windows[next(iter(self._windows))]
