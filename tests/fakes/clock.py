from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.shared.clock import Clock


class FakeClock(Clock):
    """A clock that moves only when told to. It starts at the real time, because JWT checks use the real clock."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)
